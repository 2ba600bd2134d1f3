//! A share of a deployment's nodes, so that a read can be split between threads by node
//! rather than by time (the bottleneck report's long windows, whose sealed rows hold every
//! minute of an hour: split by time, each thread would read every row). A leaf: the raw-sample
//! and rollup readers both take one.

use diesel::backend::Backend;
use diesel::expression::{
    AppearsOnTable, Expression, SelectableExpression, ValidGrouping, is_aggregate,
};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, HasSqlType};

/// The nodes whose id leaves `index` when divided by `of`. Node ids are handed out in sequence,
/// so each of `of` shares holds about as many of a deployment's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeShare {
    index: i64,
    of: i64,
}

impl NodeShare {
    /// Every node.
    pub const ALL: NodeShare = NodeShare { index: 0, of: 1 };

    /// Share `index` (from 0) of `of`; `None` unless `0 <= index < of`.
    pub fn new(index: i64, of: i64) -> Option<Self> {
        (0..of).contains(&index).then_some(NodeShare { index, of })
    }

    /// Whether node `id` is in the share.
    pub fn holds(self, id: i64) -> bool {
        id.rem_euclid(self.of) == self.index
    }

    /// The share as a condition on the `node_id` column of the table a query reads, with the
    /// two numbers bound, so that a statement stays prepared.
    pub(crate) fn condition(self) -> InShare {
        InShare {
            of: self.of,
            index: self.index,
        }
    }

    /// The condition as SQL text, for a statement written whole: of two numbers of this type,
    /// never of input.
    pub(crate) fn sql(self) -> String {
        if self.of == 1 {
            "1 = 1".to_owned()
        } else {
            format!("node_id % {} = {}", self.of, self.index)
        }
    }
}

/// `node_id % of = index` ([`NodeShare::condition`]), or for every node `1 = 1`, which the
/// database settles once rather than per row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InShare {
    of: i64,
    index: i64,
}

/// The text differs between every node and a share, so a statement is cached by its text, not
/// its type.
impl QueryId for InShare {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Expression for InShare {
    type SqlType = Bool;
}

impl<QS> AppearsOnTable<QS> for InShare {}

impl<QS> SelectableExpression<QS> for InShare {}

impl ValidGrouping<()> for InShare {
    type IsAggregate = is_aggregate::Never;
}

impl<DB> QueryFragment<DB> for InShare
where
    DB: Backend + HasSqlType<BigInt>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> diesel::QueryResult<()> {
        if self.of == 1 {
            out.push_sql("1 = 1");
            return Ok(());
        }
        out.push_sql("node_id % ");
        out.push_bind_param::<BigInt, _>(&self.of)?;
        out.push_sql(" = ");
        out.push_bind_param::<BigInt, _>(&self.index)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_split_the_nodes_without_overlap() {
        let shares = [NodeShare::new(0, 2), NodeShare::new(1, 2)].map(Option::unwrap);
        for id in 1..100 {
            assert_eq!(shares.iter().filter(|s| s.holds(id)).count(), 1);
            assert!(NodeShare::ALL.holds(id));
        }
        assert_eq!(NodeShare::new(2, 2), None);
        assert_eq!(NodeShare::new(-1, 2), None);
        assert_eq!(shares[1].sql(), "node_id % 2 = 1");
    }
}
