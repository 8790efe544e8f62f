/// What the backend handed us for one push token.
public enum TokenInput: Sendable, Hashable {
    /// The raw string as the backend sent it. It may itself be JSON text: a quoted string (a client
    /// ran `JSON.stringify` on the token) or a subscription object (a web client stored it as text).
    case text(String)
    /// An already-parsed JSON value: an object for Web Push and legacy Safari; a `.string` is read
    /// exactly like `.text`.
    case json(JSONValue)
}
