import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the `process_*` metrics of the Prometheus client libraries report, read from Linux's `/proc`: CPU time,
/// memory, file descriptors, start time. Nil where there is no `/proc` (macOS while developing).
public struct ProcessStats: Sendable, Hashable {
    /// User and system CPU time, seconds.
    public var cpuSeconds: Double
    public var residentMemoryBytes: Double
    public var virtualMemoryBytes: Double
    public var openFileDescriptors: Double
    public var maxFileDescriptors: Double
    /// Since the Unix epoch, seconds.
    public var startTimeSeconds: Double

    public static func read() -> ProcessStats? {
        #if os(Linux)
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        guard let fields = fields(ofStat: stat), ticks > 0, pageSize > 0 else { return nil }
        let bootTime = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)).flatMap(Self.bootTime(ofProcStat:)) ?? 0
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        var limit = rlimit()
        let maxFds = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Double(limit.rlim_cur) : 0
        return ProcessStats(
            cpuSeconds: (fields.utime + fields.stime) / ticks, residentMemoryBytes: fields.rssPages * pageSize, virtualMemoryBytes: fields.vsize,
            openFileDescriptors: Double(fds), maxFileDescriptors: maxFds, startTimeSeconds: bootTime + fields.startTicks / ticks)
        #else
        return nil
        #endif
    }

    /// The numbers of `/proc/self/stat` these metrics need (`man 5 proc`): the fields after the command name, which is
    /// in parentheses and may itself hold spaces and parentheses.
    static func fields(ofStat text: String) -> (utime: Double, stime: Double, startTicks: Double, vsize: Double, rssPages: Double)? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        // After ")": field 3 (state) is the first; utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
        let rest = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        func field(_ n: Int) -> Double? { rest.count > n - 3 ? Double(rest[n - 3]) : nil }
        guard let utime = field(14), let stime = field(15), let start = field(22), let vsize = field(23), let rss = field(24) else { return nil }
        return (utime, stime, start, vsize, rss)
    }

    /// `btime` of `/proc/stat`: when the system booted, seconds since the epoch.
    static func bootTime(ofProcStat text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst("btime ".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
