import GRDB
import PostgresNIO

/// What a storage error says that is safe to log: the driver's code and message, never a statement's bound values
/// (tokens and contact values sit in them) nor PostgreSQL's DETAIL (which quotes key values). PostgresNIO's own
/// description is deliberately generic, which tells an operator nothing; this says which failure it was.
public func storageErrorText(_ error: any Error) -> String {
    switch error {
    case let error as PSQLError:
        var parts = ["PostgreSQL \(error.code)"]
        if let state = error.serverInfo?[.sqlState] { parts.append("SQLSTATE \(state)") }
        if let message = error.serverInfo?[.message] { parts.append(message) }
        if error.serverInfo == nil, let underlying = error.underlying { parts.append(String(describing: underlying)) }
        return String(parts.joined(separator: ": ").prefix(300))
    case let error as DatabaseError:
        // The SQL text has only placeholders; GRDB leaves the arguments out unless asked to show them.
        return "SQLite \(error.resultCode): \(error.message ?? "")"
    default:
        return String(String(describing: error).prefix(300))
    }
}

/// Whether `error` says storage cannot be used right now (a database down or unreachable, a connection lost, a disk
/// that is full or read-only, a busy lock), as opposed to one row or statement going wrong (a value that does not
/// decode or decrypt, a constraint: a bug or bad data). Readiness turns 503 only on the first kind.
public func storageIsUnavailable(_ error: any Error) -> Bool {
    switch error {
    case is PSQLError:
        return true
    case let error as DatabaseError:
        switch error.resultCode.primaryResultCode {
        case .SQLITE_CONSTRAINT, .SQLITE_MISMATCH, .SQLITE_MISUSE, .SQLITE_RANGE, .SQLITE_ERROR, .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return false
        default:
            return true
        }
    default:
        return false
    }
}
