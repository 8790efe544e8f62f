import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import Storage

/// What `pushbridge status` shows: device counts by app, state and provider, and the newest failures.
public struct StatusReport: Codable, Sendable {
    public struct App: Codable, Sendable {
        public var appCode: String
        public var devices: Int
        public var byState: [String: Int]
        public var byProvider: [String: Int]
        public var queuedIntents: Int
        public var recentFailures: [StoreOverview.Failure]
    }
    public var apps: [App]

    /// Straight from a store (read-only: safe beside a running server).
    public static func from(store: any DeviceStore, apps: [String], failures: Int = 10) async throws -> StatusReport {
        let overview = try await store.overview(app: nil, failures: failures)
        let codes = Set(apps).union(overview.apps.keys).sorted()
        return StatusReport(apps: codes.map { code in
            let c = overview.apps[code] ?? .init()
            return App(appCode: code, devices: c.total, byState: c.byState, byProvider: c.byProvider, queuedIntents: c.queuedIntents,
                       recentFailures: overview.recentFailures.filter { $0.appCode == code })
        })
    }

    /// Through the API of a running server (`GET /v1/apps/{code}/stats`).
    public static func from(url: String, apps: [String], apiKey: String?, http: HTTPClient) async throws -> StatusReport {
        var out: [App] = []
        for code in apps {
            var request = HTTPClientRequest(url: "\(url)/v1/apps/\(code)/stats")
            if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
            let response = try await http.execute(request, timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 4 << 20)
            guard response.status == .ok else {
                throw StatusError(message: "GET /v1/apps/\(code)/stats answered \(response.status.code): \(String(buffer: body).prefix(300))")
            }
            out.append(try JSONDecoder().decode(App.self, from: Data(buffer: body)))
        }
        return StatusReport(apps: out)
    }

    public struct StatusError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// A table for people.
    public func rendered() -> String {
        let states = ["registered", "pending", "retrying", "failed", "unregistered"]
        var rows: [[String]] = [["app", "devices"] + states + ["queued", "providers"]]
        for a in apps {
            let providers = a.byProvider.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            rows.append([a.appCode, String(a.devices)] + states.map { String(a.byState[$0] ?? 0) } + [String(a.queuedIntents), providers])
        }
        let widths = rows[0].indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        var text = rows.map { row in
            row.enumerated().map { i, cell in cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }.joined(separator: "\n")
        let failures = apps.flatMap(\.recentFailures)
        text += "\n\nnewest failures:" + (failures.isEmpty ? " none" : "")
        for f in failures {
            text += "\n  \(f.at)  \(f.appCode)/\(f.deviceId)  \(f.step) \(f.status.map(String.init) ?? "network"): \(f.message)"
        }
        return text + "\n"
    }
}
