import Hummingbird
import NIOCore

/// The `/_sandbox/` routes: inspection and fault control. They never go through fault matching.
extension MESandbox {
    func registerControlRoutes<Context: RequestContext>(on routes: SandboxRoutes<Context>) {
        let base = "/_sandbox"

        routes.on(base + "/health", .get) { _, _ in
            SandboxHTTP.json(["status": "ok"])
        }

        routes.on(base + "/clients/:clientId", .get) { _, context in
            let clientId = try context.parameters.require("clientId")
            guard let view = await self.client(clientId) else {
                return SandboxHTTP.error(.notFound, "unknown client", field: "clientId")
            }
            return SandboxHTTP.json(view)
        }

        routes.on(base + "/requests", .get) { request, _ in
            let query = request.uri.queryParameters
            let clientId = query["clientId"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            var limit: Int?
            if let rawLimit = query["limit"], !rawLimit.isEmpty {
                guard let parsed = Int(rawLimit), parsed >= 0 else {
                    return SandboxHTTP.error(.badRequest, "limit must be a non-negative integer", field: "limit")
                }
                limit = parsed
            }
            return SandboxHTTP.json(self.state.withLock { $0.requestLog(clientId: clientId, limit: limit) })
        }

        routes.on(base + "/faults", .post) { request, _ in
            var request = request
            let bytes = Array(buffer: try await request.collectBody(upTo: Self.maxBodySize))
            do throws(MEFailure) {
                let object = try BodyValidation.requiredObject(bytes)
                let fault = try self.state.withLock { state throws(MEFailure) in try state.faults.add(object) }
                self.logger.info("sandbox fault added", metadata: [
                    "sandbox.fault": "\(fault.id)", "sandbox.fault.mode": "\(fault.mode.rawValue)",
                ])
                return SandboxHTTP.json(fault, status: .created)
            } catch {
                return SandboxHTTP.error(error.status, error.message, field: error.field)
            }
        }

        routes.on(base + "/faults", .get) { _, _ in
            SandboxHTTP.json(await self.faults())
        }

        routes.on(base + "/faults", .delete) { _, _ in
            self.state.withLock { $0.faults.removeAll() }
            return Response(status: .noContent)
        }

        routes.on(base + "/faults/:id", .delete) { _, context in
            let id = try context.parameters.require("id")
            let removed = self.state.withLock { $0.faults.remove(id: id) }
            return removed ? Response(status: .noContent) : SandboxHTTP.error(.notFound, "unknown fault", field: "id")
        }

        routes.on(base + "/contact-tokens/expire", .post) { _, _ in
            let count = self.state.withLock { $0.expireAllContactTokens() }
            self.logger.info("sandbox expired all contact tokens", metadata: ["sandbox.tokens": "\(count)"])
            return SandboxHTTP.json(["expired": count])
        }

        routes.on(base + "/refresh-tokens/revoke", .post) { _, _ in
            let count = self.state.withLock { $0.revokeAllRefreshTokens() }
            self.logger.info("sandbox revoked all refresh tokens", metadata: ["sandbox.tokens": "\(count)"])
            return SandboxHTTP.json(["revoked": count])
        }

        routes.on(base + "/violations", .get) { request, _ in
            let query = request.uri.queryParameters
            let clientId = query["clientId"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            let kind = query["kind"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            if let kind, SandboxViolation.Kind(rawValue: kind) == nil {
                // A typo must not read as "no violation".
                let kinds = SandboxViolation.Kind.allCases.map(\.rawValue).joined(separator: ", ")
                return SandboxHTTP.error(.badRequest, "kind must be one of \(kinds)", field: "kind")
            }
            let (list, count) = self.state.withLock { ($0.violationList(clientId: clientId, kind: kind), $0.violationCount) }
            var response = SandboxHTTP.json(list)
            response.headers[.xSandboxViolationCount] = String(count)
            return response
        }

        routes.on(base + "/violations", .delete) { _, _ in
            self.state.withLock { $0.clearViolations() }
            return Response(status: .noContent)
        }

        routes.on(base + "/strict", .post) { request, _ in
            var request = request
            let bytes = Array(buffer: try await request.collectBody(upTo: Self.maxBodySize))
            do throws(MEFailure) {
                let object = try BodyValidation.requiredObject(bytes)
                guard case .bool(let enabled)? = object["enabled"] else {
                    throw .invalidField("enabled", "must be a boolean")
                }
                self.state.withLock { $0.strict = enabled }
                self.logger.info("sandbox strict mode", metadata: ["sandbox.strict": "\(enabled)"])
                return SandboxHTTP.json(["strict": enabled])
            } catch {
                return SandboxHTTP.error(error.status, error.message, field: error.field)
            }
        }

        routes.on(base + "/reset", .post) { _, _ in
            self.state.withLock { $0.reset() }
            self.logger.info("sandbox reset")
            return Response(status: .noContent)
        }
    }
}
