//! Paging, gathered in one place: what every listing reads (`skip` and `limit`, [`Paging`])
//! and how big a page may grow in bytes ([`PAGE_BYTES`], [`page_len`]) when its items copy
//! stored texts.

use crate::http::input::{Input, IntField};
use serde::Serialize;

/// `skip` and `limit`: the paging every listing shares, read in one place.
#[derive(Debug, Clone, Copy)]
pub struct Paging;

impl Paging {
    /// Items to skip.
    pub const SKIP: IntField = IntField::new("skip", "Items to skip").min(0).default(0);
    /// The most items a page holds; 100 when absent unless the listing says otherwise.
    pub const LIMIT: IntField = IntField::new("limit", "At most this many items")
        .min(1)
        .max(1000)
        .default(100);
    /// [`Paging::LIMIT`] for listings that return everything when no limit is given.
    pub const LIMIT_OR_ALL: IntField =
        IntField::new("limit", "At most this many items (all when absent)")
            .min(1)
            .max(1000);

    /// Reads `skip`: its default when absent.
    pub fn skip(input: &mut Input<'_>) -> i64 {
        input.query_int_or_default(&Self::SKIP)
    }

    /// Reads `limit`: its default when absent.
    pub fn limit(input: &mut Input<'_>) -> i64 {
        input.query_int_or_default(&Self::LIMIT)
    }
}

/// The cursor of the next page of a listing read newest first by id (`before`): the last id of
/// a page that came full (`len == limit`), else none (this page was the last).
pub fn next_before(len: usize, limit: i64, last_id: Option<i64>) -> Option<i64> {
    (len as i64 == limit).then_some(last_id).flatten()
}

/// The most bytes of JSON one page of a listing of stored texts holds (deployments, events):
/// a page ends before the item that would take it past this, so that whatever descriptions
/// were stored, an answer stays this small. Every page holds at least one item.
pub const PAGE_BYTES: usize = 1 << 20;

/// How many of `items`, from the first, fit a JSON array of at most [`PAGE_BYTES`] bytes (at
/// least one). Each is measured as it serializes, into no buffer: the page is then serialized as
/// the type the document shows.
pub fn page_len<T: Serialize>(items: &[T]) -> usize {
    /// A writer that only counts.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // The brackets.
    let mut total = 2;
    for (index, item) in items.iter().enumerate() {
        let mut size = Count(0);
        // Serializing the API's shapes into a writer that cannot fail cannot fail.
        let _ = serde_json::to_writer(&mut size, item);
        // The comma before every item but the first.
        total += size.0 + usize::from(index > 0);
        if index > 0 && total > PAGE_BYTES {
            return index;
        }
    }
    items.len()
}

#[cfg(test)]
mod page_tests {
    use super::*;

    #[test]
    fn a_page_stops_before_the_item_that_would_pass_its_bytes() {
        let big = "x".repeat(PAGE_BYTES / 3);
        let items = [&big, &big, &big, &big];
        let count = page_len(&items);
        assert_eq!(count, 2);
        let bytes = serde_json::to_vec(&items[..count]).expect("json");
        assert!(bytes.len() <= PAGE_BYTES);
        let parsed: Vec<String> = serde_json::from_slice(&bytes).expect("an array");
        assert_eq!(parsed.len(), 2);
        // One item larger than a page still goes out alone.
        let huge = "y".repeat(PAGE_BYTES * 2);
        assert_eq!(page_len(&[&huge, &big]), 1);
        assert_eq!(page_len(&Vec::<u8>::new()), 0);
    }
}
