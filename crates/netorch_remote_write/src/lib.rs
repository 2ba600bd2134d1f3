//! Prometheus remote write's wire format: the messages of 1.0 (`prometheus.WriteRequest`) and
//! 2.0 (`io.prometheus.write.v2.Request`) as prost messages, and a 1.0 body's encoding.
//!
//! The messages are the published `.proto` files' (prometheus/prompb `types.proto`,
//! `remote.proto`, `io/prometheus/write/v2/types.proto`): the fields netorch reads or writes are
//! declared, the rest skipped by prost as protobuf skips unknown fields. netorch-server decodes
//! them from collectors (`netorch_api`'s collectors); the workers encode 1.0 to export telemetry
//! to a time-series database (`netorch_workers`' export). One definition serves both, so what
//! netorch sends is what it would read.
//!
//! Architecture Invariant: pure: no I/O, no HTTP; bytes in, bytes out.

use prost::Message;

/// Remote write 1.0's messages (package `prometheus`), as netorch reads them (a Rust sender may
/// encode them too).
pub mod v1 {
    /// `prometheus.WriteRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        /// The series.
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `prometheus.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Its labels, `__name__` among them.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// Its samples.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<super::Sample>,
        /// Its native histograms, kept encoded: netorch counts and refuses them.
        #[prost(bytes = "vec", repeated, tag = "4")]
        pub histograms: Vec<Vec<u8>>,
    }

    /// `prometheus.Label`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        /// Name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Value.
        #[prost(string, tag = "2")]
        pub value: String,
    }
}

/// Remote write 2.0's messages (package `io.prometheus.write.v2`), as netorch reads them.
pub mod v2 {
    /// `io.prometheus.write.v2.Request`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        /// Every string the series refer to, by index; the first is "".
        #[prost(string, repeated, tag = "4")]
        pub symbols: Vec<String>,
        /// The series.
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `io.prometheus.write.v2.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Its labels as pairs of indexes into the symbols: name, value, name, value, ...
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        /// Its samples.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<super::Sample>,
        /// Its native histograms, kept encoded: netorch counts and refuses them.
        #[prost(bytes = "vec", repeated, tag = "3")]
        pub histograms: Vec<Vec<u8>>,
    }
}

/// A sample, the same in both versions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The body of a remote write 1.0 request carrying `request`: the message, snappy-compressed
/// in the block format (not the framed one), as the specification requires.
pub fn encode_v1(request: &v1::WriteRequest) -> Vec<u8> {
    compress(&request.encode_to_vec())
}

/// Writes a remote write 1.0 request series by series, straight into its protobuf bytes: the
/// same bytes prost writes for a [`v1::WriteRequest`] of those series (tested against it), with
/// no message built in between. An exporter of tens of thousands of series a second spends
/// most of its time allocating the messages' strings otherwise.
#[derive(Debug, Default)]
pub struct WriteRequestWriter {
    out: Vec<u8>,
    series: Vec<u8>,
    count: usize,
}

impl WriteRequestWriter {
    /// An empty request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a series of `labels` (name, value; sorted by name, as the specification requires:
    /// the caller's to keep) and its `samples` (value, milliseconds since the epoch).
    pub fn series(
        &mut self,
        labels: &[(&str, &str)],
        samples: impl IntoIterator<Item = (f64, i64)>,
    ) {
        self.series.clear();
        for (name, value) in labels {
            let length = field_len(1, name.len()) + field_len(2, value.len());
            key(&mut self.series, 1, 2);
            varint(&mut self.series, length as u64);
            bytes_field(&mut self.series, 1, name.as_bytes());
            bytes_field(&mut self.series, 2, value.as_bytes());
        }
        for (value, timestamp) in samples {
            let mut sample = [0u8; 1 + 8 + 1 + 10];
            let mut n = 0;
            // Fields at their default (0) are left out, as prost leaves them.
            if value != 0.0 {
                sample[0] = 0x09;
                sample[1..9].copy_from_slice(&value.to_le_bytes());
                n = 9;
            }
            if timestamp != 0 {
                sample[n] = 0x10;
                n += 1;
                n += write_varint(&mut sample[n..], timestamp as u64);
            }
            key(&mut self.series, 2, 2);
            varint(&mut self.series, n as u64);
            self.series.extend_from_slice(&sample[..n]);
        }
        key(&mut self.out, 1, 2);
        varint(&mut self.out, self.series.len() as u64);
        self.out.extend_from_slice(&self.series);
        self.count += 1;
    }

    /// The series written so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no series was written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The request's protobuf bytes, uncompressed.
    pub fn bytes(&self) -> &[u8] {
        &self.out
    }

    /// The request's body: its bytes, snappy-compressed as [`encode_v1`] does.
    pub fn body(&self) -> Vec<u8> {
        compress(&self.out)
    }
}

fn key(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    varint(out, u64::from((field << 3) | wire_type));
}

fn varint(out: &mut Vec<u8>, value: u64) {
    let mut buffer = [0u8; 10];
    let n = write_varint(&mut buffer, value);
    out.extend_from_slice(&buffer[..n]);
}

fn write_varint(out: &mut [u8], mut value: u64) -> usize {
    let mut n = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out[n] = byte;
            return n + 1;
        }
        out[n] = byte | 0x80;
        n += 1;
    }
}

fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// A length-delimited field's encoded length (key, length, bytes); an empty one is left out.
fn field_len(field: u32, length: usize) -> usize {
    if length == 0 {
        return 0;
    }
    varint_len(u64::from(field << 3 | 2)) + varint_len(length as u64) + length
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn compress(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0; snap::raw::max_compress_len(raw.len())];
    // The buffer is max_compress_len long, and the one error compress gives is a buffer too
    // small (or an input past snappy's 4 GiB limit, which no bounded request reaches): the
    // fallback is never taken.
    match snap::raw::Encoder::new().compress(raw, &mut out) {
        Ok(written) => {
            out.truncate(written);
            out
        }
        Err(_) => snap::raw::Encoder::new()
            .compress_vec(raw)
            .unwrap_or_default(),
    }
}

/// Decodes a snappy-compressed remote write 1.0 body (for tests and embedders reading what
/// [`encode_v1`] wrote).
pub fn decode_v1(body: &[u8]) -> Result<v1::WriteRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("not snappy: {e}"))?;
    v1::WriteRequest::decode(raw.as_slice()).map_err(|e| format!("not a WriteRequest: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_request_decodes_to_itself() {
        let request = v1::WriteRequest {
            timeseries: vec![v1::TimeSeries {
                labels: vec![
                    v1::Label {
                        name: "__name__".into(),
                        value: "netorch_latency_ms".into(),
                    },
                    v1::Label {
                        name: "node".into(),
                        value: "node-001".into(),
                    },
                ],
                samples: vec![
                    Sample {
                        value: 12.5,
                        timestamp: 1_800_000_000_000,
                    },
                    Sample {
                        value: 13.0,
                        timestamp: 1_800_000_005_000,
                    },
                ],
                histograms: vec![],
            }],
        };
        let body = encode_v1(&request);
        assert_eq!(decode_v1(&body).expect("decode"), request);
        assert!(decode_v1(b"not snappy").is_err());
    }

    #[test]
    fn the_writer_writes_the_bytes_prost_writes() {
        let labels = [
            ("__name__", "netorch_error_rate"),
            ("deployment", "7"),
            ("node", "nœud-ü"),
            ("node_id", "1234567"),
        ];
        // Zeros, negatives, large and small timestamps: every varint length and default.
        let samples = [
            (0.0, 0),
            (-1.5, 1),
            (0.25, 127),
            (1e300, 128),
            (f64::MIN_POSITIVE, 1_800_000_000_000),
            (3.0, -5),
            (f64::NAN, i64::MAX),
        ];
        let mut writer = WriteRequestWriter::new();
        assert!(writer.is_empty());
        writer.series(&labels, samples);
        writer.series(&[("__name__", ""), ("a", "b")], []);
        writer.series(&[], [(1.0, 2)]);
        let request = v1::WriteRequest {
            timeseries: vec![
                v1::TimeSeries {
                    labels: labels
                        .iter()
                        .map(|(name, value)| v1::Label {
                            name: (*name).into(),
                            value: (*value).into(),
                        })
                        .collect(),
                    samples: samples
                        .iter()
                        .map(|&(value, timestamp)| Sample { value, timestamp })
                        .collect(),
                    histograms: vec![],
                },
                v1::TimeSeries {
                    labels: vec![
                        v1::Label {
                            name: "__name__".into(),
                            value: String::new(),
                        },
                        v1::Label {
                            name: "a".into(),
                            value: "b".into(),
                        },
                    ],
                    samples: vec![],
                    histograms: vec![],
                },
                v1::TimeSeries {
                    labels: vec![],
                    samples: vec![Sample {
                        value: 1.0,
                        timestamp: 2,
                    }],
                    histograms: vec![],
                },
            ],
        };
        assert_eq!(writer.len(), 3);
        assert_eq!(writer.bytes(), request.encode_to_vec().as_slice());
        let decoded = decode_v1(&writer.body()).expect("decode");
        assert_eq!(decoded.timeseries.len(), 3);
        assert_eq!(decoded.timeseries[0].labels, request.timeseries[0].labels);
    }
}
