//! The standard process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! ...), read from Linux's `/proc` at each scrape. prometheus-client has no process collector;
//! these are the names every Prometheus client library uses, so stock dashboards work. On
//! other systems there is no `/proc`, and they are left out.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of `/proc/self/stat`'s times: `sysconf(_SC_CLK_TCK)`, which is 100
/// on every Linux architecture netorch builds for (it is fixed by the kernel's user ABI).
const CLOCK_TICKS: f64 = 100.0;

#[derive(Debug)]
pub(crate) struct ProcessCollector;

/// What `/proc` says about this process.
#[derive(Debug, Default, PartialEq)]
struct ProcessStats {
    cpu_seconds: f64,
    start_time_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    threads: u64,
    open_fds: u64,
    max_fds: u64,
}

/// Reads `/proc/self/stat` (times and start), `/proc/self/status` (memory, threads),
/// `/proc/self/fd` and `/proc/self/limits`, and `/proc/stat` (boot time).
fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    parse(&stat, &status, &boot, &limits, open_fds)
}

fn parse(
    stat: &str,
    status: &str,
    boot: &str,
    limits: &str,
    open_fds: u64,
) -> Option<ProcessStats> {
    // The command name in parentheses may hold spaces: fields are counted after its `)`.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14, 15 (utime, stime) and 22 (starttime) of proc(5), counted from 1 with the
    // pid and the name as 1 and 2: indexes 11, 12 and 19 here.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    let cpu_seconds = (ticks(11)? + ticks(12)?) / CLOCK_TICKS;
    let boot_time: f64 = boot
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let start_time_seconds = boot_time + ticks(19)? / CLOCK_TICKS;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    let max_fds = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Some(ProcessStats {
        cpu_seconds,
        start_time_seconds,
        resident_bytes: kib("VmRSS:").unwrap_or(0) * 1024,
        virtual_bytes: kib("VmSize:").unwrap_or(0) * 1024,
        threads: kib("Threads:").unwrap_or(0),
        open_fds,
        max_fds,
    })
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = read() else {
            return Ok(());
        };
        let gauge = |n: u64| ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
        super::one(
            &mut encoder,
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            &ConstCounter::new(stats.cpu_seconds),
        )?;
        super::one(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            &ConstGauge::new(stats.start_time_seconds),
        )?;
        super::one(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            &gauge(stats.resident_bytes),
        )?;
        super::one(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            &gauge(stats.virtual_bytes),
        )?;
        super::one(
            &mut encoder,
            "process_threads",
            "Number of OS threads in the process",
            &gauge(stats.threads),
        )?;
        super::one(
            &mut encoder,
            "process_open_fds",
            "Number of open file descriptors",
            &gauge(stats.open_fds),
        )?;
        if stats.max_fds > 0 {
            super::one(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors",
                &gauge(stats.max_fds),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_field_by_field() {
        // A command name with a space and a parenthesis, as the kernel writes it.
        let stat = "4242 (net orch) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 7 0 \
                    12345 1000000 300 18446744073709551615";
        let status = "Name:\tnetorch\nVmSize:\t  204800 kB\nVmRSS:\t   10240 kB\nThreads:\t7\n";
        let boot = "cpu  1 2 3\nbtime 1800000000\nprocesses 5\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        let stats = parse(stat, status, boot, limits, 12).expect("parsed");
        assert_eq!(
            stats,
            ProcessStats {
                cpu_seconds: 3.0,
                start_time_seconds: 1_800_000_123.45,
                resident_bytes: 10_485_760,
                virtual_bytes: 209_715_200,
                threads: 7,
                open_fds: 12,
                max_fds: 1024,
            }
        );
    }

    #[test]
    fn this_process_is_read() {
        let stats = read().expect("Linux /proc");
        assert!(stats.resident_bytes > 0 && stats.threads >= 1 && stats.open_fds >= 3);
    }
}
