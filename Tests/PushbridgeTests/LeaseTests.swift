import Foundation
import PushbridgeServer
import Testing

/// Leases on PostgreSQL with two instances on one database and one sandbox: a call longer than the lease stays with
/// the instance that sends it (the heartbeat renews the lease), so the other instance never sends for that client
/// meanwhile. Needs a PostgreSQL server (`PUSHBRIDGE_TEST_POSTGRES_URL`, which scripts/test.sh starts): on SQLite one
/// instance holds the file, and there is nobody to take a device over. It runs alone (`PUSHBRIDGE_TEST_LEASES_ALONE=1`,
/// as scripts/test.sh runs it after the full suite): with every suite at once on two cores a heartbeat can be starved
/// for more than the 2 s lease, and the call is then abandoned as designed, which is not what this test is about.
@Suite(
    "Leases: the heartbeat keeps a long call's device", .serialized,
    .enabled(if: InvariantRegressionTests.postgresURL != nil, "needs PUSHBRIDGE_TEST_POSTGRES_URL: two instances share one PostgreSQL database"),
    .enabled(if: ProcessInfo.processInfo.environment["PUSHBRIDGE_TEST_LEASES_ALONE"] == "1", "runs alone: scripts/test.sh runs it after the full suite"))
struct LeaseTests {
    @Test("a push-token PUT that takes 5 s under a 2 s lease is sent once; the other instance does not take the device")
    func heartbeatKeepsTheDevice() async throws {
        try await InvariantRegressionTests.withBed("postgres", configure: { c in
            c.emarsys.leaseSeconds = 2
            c.emarsys.requestTimeoutSeconds = 10
            c.instanceId = "lease-a"
        }) { bed in
            // Instance B: the same database and sandbox, its own port and name.
            var other = bed.configuration
            other.instanceId = "lease-b"
            let b = try await BridgeServer(configuration: other, logger: TestBed.logger)
            let running = Task { try await b.run(signals: []) }
            defer { running.cancel() }
            _ = await b.port()
            try await bed.addFault(["mode": "status", "latencyMs": 5000, "method": "PUT", "path": "/push-token", "count": 1])
            #expect(try await bed.request("PUT", bed.devicePath("slow"), json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202)
            _ = try await bed.waitForState("slow", "registered", timeout: .seconds(30))
            let clientId = try await bed.clientId(of: "slow")
            let puts = await bed.sandbox.requestLog().filter { $0.clientId == clientId && $0.method == "PUT" && $0.path.hasSuffix("/push-token") }
            #expect(puts.count == 1, "the push token was sent \(puts.count) times")
            try await bed.expectNoViolations()
            await b.shutdown()
            _ = try? await running.value
        }
    }
}
