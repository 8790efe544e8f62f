import Hummingbird
import NIOCore

/// Implemented by request contexts that can close the underlying connection.
///
/// Fault mode "close" must end the TCP connection without a single response byte. Hummingbird's
/// `BasicRequestContext` does not keep the channel, so only contexts that do (like `SandboxRequestContext`)
/// can do it; with other contexts the sandbox falls back to a broken response (see `MESandbox.dropResponse`).
public protocol SandboxConnectionClosing {
    /// Closes the connection this request arrived on.
    func closeConnection() async
}

/// The request context of the standalone sandbox server: Hummingbird's basics plus the connection's channel.
public struct SandboxRequestContext: RequestContext, SandboxConnectionClosing {
    public var coreContext: CoreRequestContextStorage
    private let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    public func closeConnection() async {
        // The close can only fail when the channel is already closed, which is the goal anyway.
        try? await channel.close()
    }
}

/// Thrown after a "close" fault so Hummingbird abandons the request (and, with a broken body, the connection).
struct SandboxConnectionDropped: Error {}
