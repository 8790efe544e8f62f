import AsyncHTTPClient
import ConcurrencySupport
import Foundation
import Logging
import MobileEngage
import NIOCore
import NIOHTTP1
import Synchronization

/// Sends `MECall`s over AsyncHTTPClient and classifies the answers.
///
/// It knows the wire protocol only: which call comes next, and what to do with the answer,
/// is the workflow's business.
public struct MEClient: Sendable {
    /// Where ME lives. Settable once the embedded sandbox knows its port.
    public let endpoints: LockedValue<MEEndpoints>
    public let sdkVersion: String
    public let requestTimeout: Duration
    /// `User-Agent` of every call: `pushbridge/` and the bridge's version, so ME's operators (and the sandbox,
    /// which checks the bridge's invariants on exactly this traffic, `SandboxConfiguration.isBridge`) can tell the
    /// bridge from an SDK.
    public let userAgent: String
    private let httpClient: HTTPClient

    public init(httpClient: HTTPClient, endpoints: MEEndpoints, sdkVersion: String, requestTimeout: Duration, bridgeVersion: String) {
        self.httpClient = httpClient
        self.endpoints = LockedValue(endpoints)
        self.sdkVersion = sdkVersion
        self.requestTimeout = requestTimeout
        self.userAgent = "pushbridge/" + bridgeVersion
    }

    /// Performs `call` and returns the classified answer. Never throws: transport failures are `.network`.
    public func send(_ call: MECall, context: MERequestContext, logger: Logger) async -> MEAnswer {
        let (method, url) = endpoints.get().route(of: call, context: context)
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in MEWireFormat.headers(of: call, context: context, sdkVersion: sdkVersion) {
            request.headers.add(name: name, value: value)
        }
        request.headers.add(name: "User-Agent", value: userAgent)
        request.body = .bytes(ByteBuffer(bytes: MEWireFormat.body(of: call)))
        do {
            let response = try await httpClient.execute(request, timeout: .nanoseconds(Int64(requestTimeout.nanosecondsTotal)))
            let body = try await response.body.collect(upTo: 1 << 20)
            let clientState = response.headers.first(name: "X-Client-State")
            let status = Int(response.status.code)
            if (200..<300).contains(status) {
                switch call {
                case .linkAnonymousContact, .linkContact, .linkOpenIdContact, .refreshContactToken:
                    guard let tokens = MEWireFormat.contactTokens(from: Array(buffer: body)),
                          tokens.contactToken != nil
                    else {
                        return MEAnswer(outcome: .network(message: "ME answered \(status) with an unreadable contact body"), clientState: clientState)
                    }
                    return MEAnswer(outcome: .success(contactToken: tokens.contactToken, refreshToken: tokens.refreshToken), clientState: clientState, status: status)
                case .events where context.eventsAPIVersion == .v4:
                    let eventState = MEWireFormat.deviceEventState(from: Array(buffer: body))
                    return MEAnswer(outcome: .success(contactToken: nil, refreshToken: nil), clientState: clientState, deviceEventState: eventState, status: status)
                default:
                    return MEAnswer(outcome: .success(contactToken: nil, refreshToken: nil), clientState: clientState, status: status)
                }
            }
            let retryAfter = MEWireFormat.retryAfterSeconds(response.headers.first(name: "Retry-After"), now: Date())
            let message = Self.summary(status: status, body: body, contentType: response.headers.first(name: "Content-Type"))
            return MEAnswer(outcome: .http(status: status, retryAfterSeconds: retryAfter, message: message), clientState: clientState)
        } catch {
            logger.debug("ME call failed in transport", metadata: ["endpoint": "\(call.endpoint)", "error": "\(String(describing: error).prefix(200))"])
            return MEAnswer(outcome: .network(message: Self.describe(error)), clientState: nil)
        }
    }

    /// A short message for `lastError`: the status, and what the body says. A JSON error gives its `code` and
    /// message; an HTML page (a proxy's 502) is named, not quoted; other text is cut short. ME error bodies hold no
    /// secrets we sent, but control characters are stripped anyway.
    static func summary(status: Int, body: ByteBuffer, contentType: String?) -> String {
        let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
        let head = "ME answered \(status) \(reason)"
        let media = contentType?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if media == "text/html" || String(buffer: body).prefix(64).lowercased().contains("<html") {
            return head + " with an HTML page (a proxy or load balancer, not ME)"
        }
        if let object = try? JSONSerialization.jsonObject(with: Data(Array(buffer: body))) as? [String: Any] {
            let code = (object["code"] ?? object["replyCode"]).map { "\($0)" }
            let text = (object["error"] ?? object["message"] ?? object["replyText"]).map { "\($0)" }
            let said = [code.map { "code \($0)" }, text].compactMap { $0 }.joined(separator: ": ")
            if !said.isEmpty { return head + ": " + Self.clean(said) }
        }
        let text = Self.clean(String(buffer: body))
        return text.isEmpty ? head : head + ": " + text
    }

    private static func clean(_ text: String) -> String {
        String(text.filter { !$0.isNewline && !($0.asciiValue.map { $0 < 32 } ?? false) }.prefix(200))
    }

    static func describe(_ error: Error) -> String {
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout: return "ME did not answer within the request timeout"
            case .connectTimeout: return "connecting to ME timed out"
            case .remoteConnectionClosed: return "ME closed the connection before answering"
            default: return "HTTP client error: \(e)"
            }
        }
        return "network error: \(String(describing: error).prefix(160))"
    }
}

extension Duration {
    var nanosecondsTotal: Int64 {
        let (s, attos) = components
        return s * 1_000_000_000 + attos / 1_000_000_000
    }
}
