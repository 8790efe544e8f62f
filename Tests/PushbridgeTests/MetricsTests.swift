import Foundation
@testable import ServerSupport
import Testing

/// `/metrics` as an operator's Prometheus sees it: every family the README documents from the first scrape (at zero),
/// `process_*`, the build info, and `metrics.port`.
@Suite("Metrics from the first scrape", .serialized)
struct MetricsTests {
    /// The metric names in the README's Monitoring table.
    static func documentedFamilies() throws -> Set<String> {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "### Monitoring").dropFirst().first?.components(separatedBy: "No label ever holds").first)
        let rows = section.split(separator: "\n").filter { $0.hasPrefix("| `pushbridge_") }
        return Set(rows.flatMap { row in
            row.split(separator: "|")[0].split(separator: "`").filter { $0.hasPrefix("pushbridge_") }.map(String.init)
        })
    }

    /// `# TYPE name type` lines of a scrape.
    static func families(_ text: String) -> [String: String] {
        var types: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
        }
        return types
    }

    static let processFamilies = [
        "process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
        "process_max_fds", "process_start_time_seconds",
    ]

    @Test("a fresh bridge exports every documented family at zero, the process_* families and its build info")
    func firstScrape() async throws {
        let documented = try Self.documentedFamilies()
        #expect(documented.count >= 20, "the README's table was not found: \(documented)")
        try await withTestBed { bed in
            let text = String(decoding: try await bed.request("GET", "/metrics").body, as: UTF8.self)
            let families = Self.families(text)
            for name in documented.sorted() { #expect(families[name] != nil, "\(name) is not exported before its first use") }
            for name in Self.processFamilies { #expect(families[name] != nil, "\(name) is missing") }
            #expect(families["process_cpu_seconds_total"] == "counter" && families["pushbridge_me_calls_total"] == "counter")
            #expect(families["pushbridge_me_call_duration_seconds"] == "histogram" && families["pushbridge_devices"] == "gauge")
            // Nothing happened yet: the counters are at zero, the app's devices too.
            #expect(text.contains("pushbridge_contact_relinks_total 0"))
            #expect(text.contains("pushbridge_me_calls_total{endpoint=\"push_token_put\",outcome=\"transient\"} 0"))
            #expect(text.contains("pushbridge_devices{app=\"\(TestBed.app)\",state=\"failed\"} 0"))
            #expect(text.contains("pushbridge_build_info{version=\""))
            // The process: some memory, open files, a start within the last day.
            func value(_ name: String) -> Double? {
                text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
            }
            #expect((value("process_resident_memory_bytes") ?? 0) > 1_000_000)
            #expect((value("process_open_fds") ?? 0) > 2 && (value("process_max_fds") ?? 0) >= (value("process_open_fds") ?? 0))
            #expect(abs((value("process_start_time_seconds") ?? 0) - Date().timeIntervalSince1970) < 86_400)

            // A request is counted in the series made at the start, not in a second one with another route spelling.
            _ = try await bed.request("PUT", bed.devicePath("m1"), json: ["provider": "fcm", "token": Tokens.fcm()])
            let after = String(decoding: try await bed.request("GET", "/metrics").body, as: UTF8.self)
            let puts = after.split(separator: "\n").filter {
                $0.hasPrefix("pushbridge_http_requests_total{") && $0.contains("method=\"PUT\"") && $0.contains("status=\"202\"")
                    && $0.contains("/devices/{deviceId}\"")
            }
            #expect(puts.count == 1 && puts.first?.hasSuffix(" 1") == true, "\(puts)")
            #expect(after.contains("pushbridge_http_request_duration_seconds_count{route=\"/v1/apps/{code}/devices/{deviceId}\",method=\"PUT\"} 1"))
        }
    }

    @Test("metrics.port serves /metrics and nothing else; the API's port then has no /metrics")
    func ownPort() async throws {
        try await withTestBed(configure: { $0.metrics.port = 0 }) { bed in
            let port = try #require(await bed.server?.metricsPort())
            #expect(port > 0 && port != bed.bridgePort)
            let scrape = try await bed.request("GET", "/metrics", port: port)
            #expect(scrape.status == 200 && scrape.contentType.hasPrefix("text/plain"))
            #expect(Self.families(String(decoding: scrape.body, as: UTF8.self))["pushbridge_build_info"] != nil)
            #expect(try await bed.request("GET", "/health", port: port).status == 404)
            #expect(try await bed.request("GET", "/metrics").status == 404)
            #expect(try await bed.request("GET", "/health").status == 200)
        }
    }

    @Test("/proc/self/stat is read after the command name, which may hold spaces and parentheses")
    func procStat() {
        let line = "4242 (pushbridge (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 123456 987654321 12800 18446744073709551615"
        let fields = ProcessStats.fields(ofStat: line)
        #expect(fields?.utime == 250 && fields?.stime == 75 && fields?.startTicks == 123456 && fields?.vsize == 987654321 && fields?.rssPages == 12800)
        #expect(ProcessStats.fields(ofStat: "4242 (short) S 1") == nil)
        #expect(ProcessStats.bootTime(ofProcStat: "cpu  1 2 3\nbtime 1764800000\nprocesses 9\n") == 1_764_800_000)
    }
}
