import Foundation
import Logging
import PostgresNIO
import Workflow

extension PostgresDeviceStore {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var username: String
        public var password: String?
        public var database: String
        /// `disable` (default), `prefer`, `require` (encrypted, certificate not verified, as libpq) or `verify-full`.
        public var sslMode: String
        public var poolSize: Int
        /// A schema to use instead of `public` (created when missing); the tests isolate themselves with it.
        public var schema: String?

        /// Parses `postgres://user:password@host:5432/database?sslmode=require&schema=name`.
        public init(url: String, poolSize: Int = 10) throws {
            guard let c = URLComponents(string: url), let scheme = c.scheme, scheme == "postgres" || scheme == "postgresql" else {
                throw StorageError.invalidURL("must look like postgres://user:password@host:5432/database")
            }
            guard let host = c.host, !host.isEmpty else { throw StorageError.invalidURL("names no host") }
            let database = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
            guard !database.isEmpty else { throw StorageError.invalidURL("names no database (postgres://host:5432/DATABASE)") }
            self.host = host
            port = c.port ?? 5432
            username = c.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
            password = c.password.flatMap { $0.removingPercentEncoding }
            self.database = database
            let query = Dictionary((c.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
            sslMode = query["sslmode"] ?? query["tls"] ?? "disable"
            guard ["disable", "prefer", "require", "verify-ca", "verify-full"].contains(sslMode) else {
                throw StorageError.invalidURL("sslmode must be disable, prefer, require or verify-full")
            }
            schema = query["schema"]
            if let schema, schema.isEmpty || !schema.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                throw StorageError.invalidURL("schema must be letters, digits and _")
            }
            for name in query.keys where !["sslmode", "tls", "schema"].contains(name) {
                throw StorageError.invalidURL("unknown parameter \(name) (known: sslmode, schema)")
            }
            self.poolSize = max(2, poolSize)
        }

        var clientConfiguration: PostgresClient.Configuration {
            let tls: PostgresClient.Configuration.TLS
            switch sslMode {
            case "prefer", "require":
                var t = TLSConfiguration.makeClientConfiguration()
                t.certificateVerification = .none
                tls = sslMode == "prefer" ? .prefer(t) : .require(t)
            case "verify-ca", "verify-full":
                tls = .require(.makeClientConfiguration())
            default:
                tls = .disable
            }
            var cfg = PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
            cfg.options.connectTimeout = .seconds(5)
            cfg.options.maximumConnections = poolSize
            cfg.options.minimumConnections = 1
            if let schema { cfg.options.additionalStartupParameters = [("options", "-c search_path=\(schema)")] }
            return cfg
        }
    }
}
