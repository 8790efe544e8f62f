import Foundation
import MESandbox
import Testing

/// One sandbox hit by many clients at once, as under the bridge or a benchmark.
@Suite("concurrency")
struct ConcurrencyTests {
    @Test("50 clients run the start-up workflow in parallel without losing a request")
    func parallelClients() async throws {
        try await SandboxHarness.withSandbox { harness in
            let clientIds = (0..<50).map { "client-\($0)" }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for clientId in clientIds {
                    group.addTask { () async throws in
                        var device = TestDevice(harness, clientId: clientId)
                        #expect(try await device.register().status == 204)
                        #expect(try await device.linkAnonymous().status == 200)
                        #expect(try await device.sendEvent().status == 204)
                        #expect(try await device.setPushToken("token-\(clientId)").status == 204)
                    }
                }
                try await group.waitForAll()
            }
            let log = await harness.sandbox.requestLog()
            #expect(log.count == 200)
            #expect(log.map(\.seq) == Array(1...200))
            for clientId in clientIds {
                let view = try #require(await harness.sandbox.client(clientId))
                #expect(view.pushToken == "token-\(clientId)")
                #expect(view.counts.orderViolations == 0 && view.counts.staleClientStates == 0)
            }
        }
    }
}
