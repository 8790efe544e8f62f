import AsyncHTTPClient
import Foundation
import PushbridgeServer
import PushbridgeTools
import Storage
import Testing

@Suite("Command-line tools: import and status", .serialized)
struct ToolsTests {
    @Test("import of 10,000 rows with 1% invalid: counts, rejects, and a second run changes nothing")
    func importTenThousand() async throws {
        try await withTestBed(configure: { $0.emarsys.maxConcurrentRequests = 32 }) { bed in
            var csv = "deviceId,provider,token,contactValue\n"
            var invalidLines: [Int] = []
            for i in 0..<10_000 {
                if i % 100 == 42 {
                    csv += "imp-\(i),apns,not-a-token,\n"
                    invalidLines.append(i + 2)
                } else {
                    csv += "imp-\(i),fcm,tok\(i):APA91b\(String(repeating: "x", count: 40)),\(i % 10 == 0 ? "user\(i)@example.com" : "")\n"
                }
            }
            let rows = ImportFile.parse(csv, format: .csv)
            #expect(rows.count == 10_000)
            let importer = Importer(http: bed.http, baseURL: "http://127.0.0.1:\(bed.bridgePort)", appCode: TestBed.app, apiKey: nil, concurrency: 16)
            let first = try await importer.run(rows)
            #expect(first.imported == 9_900)
            #expect(first.unchanged == 0)
            #expect(first.rejected.count == 100)
            #expect(first.rejected.map(\.line) == invalidLines)
            #expect(first.rejected.allSatisfy { $0.reason.contains("apns") || $0.reason.contains("token") })
            // The rejects file: a header, then one row per rejected line, read back with the import's own CSV reader.
            let rejects = ImportFile.csvRecords(first.rejectsCSV)
            #expect(rejects.first?.fields == ["line", "deviceId", "reason"])
            #expect(rejects.dropFirst().map { Int($0.fields[0]) } == invalidLines.map { Optional($0) })
            #expect(rejects.dropFirst().allSatisfy { $0.fields.count == 3 && $0.fields[1].hasPrefix("imp-") && !$0.fields[2].isEmpty })
            let second = try await importer.run(rows)
            #expect(second.imported == 0)
            #expect(second.unchanged == 9_900)
            #expect(second.rejected.count == 100)
            let stats = try await bed.request("GET", "/v1/apps/EMS12-34567/stats")
            #expect(stats.json["devices"] as? Int == 9_900)
        }
    }

    @Test("JSON lines and CSV quoting are read; broken lines are reported with their line number")
    func parsing() {
        let jsonl = """
            {"deviceId": "a", "provider": "chrome", "token": {"endpoint": "https://x"}, "contactValue": "c"}
            not json
            {"deviceId": "b", "provider": "fcm", "token": "t"}
            """
        let rows = ImportFile.parse(jsonl, format: .jsonl)
        #expect(rows.count == 3)
        guard case .success(let a) = rows[0], case .failure(let broken) = rows[1] else { Issue.record("unexpected rows"); return }
        #expect(a.token.contains("endpoint"))
        #expect(a.contactValue == "c")
        #expect(broken.line == 2)
        let csv = "deviceId,provider,token\n\"x,1\",fcm,\"a\"\"b\"\ny,fcm\n"
        let parsed = ImportFile.parse(csv, format: .csv)
        guard case .success(let x) = parsed[0], case .failure(let short) = parsed[1] else { Issue.record("unexpected csv rows"); return }
        #expect(x.deviceId == "x,1" && x.token == "a\"b")
        #expect(short.line == 3)
    }

    @Test("status through the API and straight from the store agree, as a table and as JSON")
    func status() async throws {
        try await withTestBed { bed in
            _ = try await bed.request("PUT", bed.devicePath("s1"), json: ["provider": "fcm", "token": Tokens.fcm()])
            _ = try await bed.request("PUT", bed.devicePath("s2"), json: ["provider": "apns", "token": Tokens.apnsHex()])
            try await bed.waitForState("s1", "registered")
            try await bed.waitForState("s2", "registered")
            let viaAPI = try await StatusReport.from(url: "http://127.0.0.1:\(bed.bridgePort)", apps: [TestBed.app], apiKey: nil, http: bed.http)
            #expect(viaAPI.apps.first?.devices == 2)
            #expect(viaAPI.apps.first?.byState == ["registered": 2])
            #expect(viaAPI.apps.first?.byProvider == ["fcm": 1, "apns": 1])
            let path = try #require(bed.configuration.sqlitePath)
            let readOnly = try SQLiteDeviceStore(path: path, sealer: try BridgeServer.sealer(bed.configuration, sqlitePath: path), readOnly: true)
            let fromStore = try await StatusReport.from(store: readOnly, apps: [TestBed.app])
            try await readOnly.close()
            #expect(fromStore.apps.first?.devices == 2)
            #expect(fromStore.apps.first?.byState == viaAPI.apps.first?.byState)
            let table = viaAPI.rendered()
            #expect(table.contains("EMS12-34567"))
            #expect(table.contains("registered"))
            #expect(table.contains("apns 1, fcm 1"))
            #expect(table.contains("newest failures: none"))
        }
    }

    @Test("status --device: the device's status and history through the API and straight from the store agree; unknown devices are nil")
    func deviceReport() async throws {
        try await withTestBed { bed in
            let token = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("r1"), json: ["provider": "fcm", "token": token], headers: ["X-Request-Id": "req-r1"])
            try await bed.waitForState("r1", "registered")
            _ = try await HistoryTests.waitForEntries(bed, "r1") { $0.contains { ($0["requestId"] as? String) == "req-r1" } }
            let url = "http://127.0.0.1:\(bed.bridgePort)"
            let viaAPI = try #require(try await DeviceReport.from(url: url, app: TestBed.app, device: "r1", limit: 50, apiKey: nil, http: bed.http))
            let path = try #require(bed.configuration.sqlitePath)
            let readOnly = try SQLiteDeviceStore(path: path, sealer: try BridgeServer.sealer(bed.configuration, sqlitePath: path), readOnly: true)
            let fromStore = try await DeviceReport.from(store: readOnly, app: TestBed.app, device: "r1", limit: 50)
            #expect(try await DeviceReport.from(store: readOnly, app: TestBed.app, device: "nobody", limit: 50) == nil)
            try await readOnly.close()
            #expect(try await DeviceReport.from(url: url, app: TestBed.app, device: "nobody", limit: 50, apiKey: nil, http: bed.http) == nil)
            #expect(try fromStore?.json() == viaAPI.json())
            let text = viaAPI.rendered()
            #expect(text.contains("device EMS12-34567/r1: registered"))
            #expect(text.contains("push-token, request req-r1") || text.contains("start, request req-r1"))
            #expect(text.contains("pending -> registered"))
            #expect(text.contains("push_token_put 204, attempt 1"))
            #expect(!text.contains(token))
            #expect(!String(decoding: try viaAPI.json(), as: UTF8.self).contains(token))
        }
    }

    @Test("retry: the re-drive counts the failed devices it took, leaves the others' failures alone, and follows them until they left failed")
    func redrive() async throws {
        try await withTestBed { bed in
            try await bed.addFault(["status": 400, "method": "PUT", "path": "/push-token", "unlimited": true])
            for id in ["f1", "f2", "f3"] { _ = try await bed.request("PUT", bed.devicePath(id) + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()]) }
            for id in ["f1", "f2", "f3"] { try await bed.waitFor(id) { $0["state"] as? String == "failed" } }
            try await bed.clearFaults()
            let url = "http://127.0.0.1:\(bed.bridgePort)"
            let redrive = Redrive(http: bed.http, baseURL: url, appCode: TestBed.app, apiKey: nil)
            // Another step asked for: none of these is taken, and the three stay untouched.
            let none = try await redrive.start(step: "contact")
            #expect(none == Redrive.Progress(retried: 0, untouched: 3, stillFailed: 0))
            var progress = try await redrive.start(step: "push-token")
            #expect(progress.retried == 3 && progress.untouched == 0)
            let deadline = Date().addingTimeInterval(30)
            while progress.done < 3, Date() < deadline {
                try await Task.sleep(for: .milliseconds(100))
                progress = try await redrive.poll(progress)
            }
            #expect(progress.done == 3 && progress.stillFailed == 0)
            for id in ["f1", "f2", "f3"] { try await bed.waitForState(id, "registered") }
            let unknownApp = Redrive(http: bed.http, baseURL: url, appCode: "EMS00-00000", apiKey: nil)
            await #expect(throws: StatusReport.StatusError.self) { try await unknownApp.start(step: nil) }
        }
    }

    @Test("export: every status once, as the API answers it, as NDJSON and CSV, paged, by state, from the API and from the store", arguments: InvariantRegressionTests.stores)
    func export(store: String) async throws {
        try await InvariantRegressionTests.withBed(store) { bed in
            // Four registered devices and one failed at its push token.
            try await bed.addFault(["status": 400, "method": "PUT", "path": "/push-token", "unlimited": true])
            var tokens = [Tokens.fcm()]
            _ = try await bed.request("PUT", bed.devicePath("x-failed"), json: ["provider": "fcm", "token": tokens[0]])
            try await bed.waitFor("x-failed") { $0["state"] as? String == "failed" }
            try await bed.clearFaults()
            let ids = ["a", "b", "c", "d"]
            for id in ids {
                tokens.append(Tokens.fcm())
                _ = try await bed.request("PUT", bed.devicePath(id), json: ["provider": "fcm", "token": tokens.last!])
            }
            for id in ids { try await bed.waitForState(id, "registered") }
            var expected: [String: NSDictionary] = [:]
            for id in ids + ["x-failed"] { expected[id] = try await bed.status(id) as NSDictionary }

            let api = Export.Source.api(http: bed.http, baseURL: "http://127.0.0.1:\(bed.bridgePort)", apiKey: nil)
            func run(_ source: Export.Source, state: String? = nil, format: Export.Format = .ndjson) async throws -> String {
                var export = try Export(source: source, appCode: TestBed.app, state: state, format: format)
                export.pageSize = 2
                var out = Data()
                var seen: [Int] = []
                let n = try await export.run(write: { out.append($0) }, progress: { seen.append($0) })
                #expect(seen.last == n && seen == seen.sorted())
                return String(decoding: out, as: UTF8.self)
            }
            // NDJSON: one status per line, each the document GET answers, in device-id order, over three pages.
            let ndjson = try await run(api)
            let lines = ndjson.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? NSDictionary }
            #expect(lines.map { $0?["deviceId"] as? String } == (ids + ["x-failed"]).map { Optional($0) })
            for line in lines { #expect(line == expected[line?["deviceId"] as? String ?? ""], "\(String(describing: line))") }
            #expect(tokens.allSatisfy { !ndjson.contains($0) }, "an export never holds a token")
            #expect(try await Export(source: api, appCode: TestBed.app, state: nil, format: .ndjson).expectedCount() == 5)
            // A state: only the failed device.
            #expect(try await run(api, state: "failed").split(separator: "\n").count == 1)
            #expect(try await Export(source: api, appCode: TestBed.app, state: "failed", format: .csv).expectedCount() == 1)

            // CSV: a header of the status's members by dotted path, one row per device, read back by a CSV reader.
            let csv = ImportFile.csvRecords(try await run(api, format: .csv))
            #expect(csv.first?.fields == Export.csvColumns)
            #expect(csv.dropFirst().map { $0.fields[1] } == ids + ["x-failed"])
            #expect(csv.dropFirst().allSatisfy { $0.fields.count == Export.csvColumns.count })
            let failedRow = try #require(csv.last?.fields)
            let column = { (name: String) in failedRow[Export.csvColumns.firstIndex(of: name)!] }
            let failed = try #require(expected["x-failed"]?["lastError"] as? [String: Any])
            #expect(column("state") == "failed" && column("lastError.step") == "push-token" && column("lastError.status") == "400")
            #expect(column("lastError.message") == failed["message"] as? String)
            #expect(column("tokenHash") == expected["x-failed"]?["tokenHash"] as? String && column("lastSeenAt") == expected["x-failed"]?["lastSeenAt"] as? String)

            // Read-only from the store the server has open (SQLite): the same bytes.
            if store == "sqlite" {
                let path = try #require(bed.configuration.sqlitePath)
                let readOnly = try SQLiteDeviceStore(path: path, sealer: try BridgeServer.sealer(bed.configuration, sqlitePath: path), readOnly: true)
                #expect(try await run(.store(readOnly)) == ndjson)
                #expect(try await run(.store(readOnly), format: .csv) == (try await run(api, format: .csv)))
                #expect(try await Export(source: .store(readOnly), appCode: TestBed.app, state: "registered", format: .csv).expectedCount() == 4)
                try await readOnly.close()
            }
            // Fields with commas, quotes and line breaks are quoted (RFC 4180) and read back whole; free text that a
            // spreadsheet would run as a formula is defused.
            let tricky = ["a,b", "say \"hi\"", "two\nlines", "crlf\r\nline", "plain"]
            let row = tricky.map(Export.csvEscaped).joined(separator: ",") + "\n"
            #expect(ImportFile.csvRecords(row).first?.fields == tricky)
            #expect(Export.noFormula("=HYPERLINK(1)") == "'=HYPERLINK(1)" && Export.noFormula("\tx") == "'\tx")
            #expect(Export.noFormula("ME answered 400") == "ME answered 400")

            // Bad input: an unknown state before anything is read; an unknown app at the server.
            #expect(throws: StatusReport.StatusError.self) { try Export(source: api, appCode: TestBed.app, state: "gone", format: .csv) }
            await #expect(throws: StatusReport.StatusError.self) {
                try await Export(source: api, appCode: "EMS00-00000", state: nil, format: .csv).run(write: { _ in })
            }
        }
    }
}
