/// What the SDK remembers about a client and sends with every request.
public struct MERequestContext: Sendable, Hashable {
    public var appCode: String
    public var clientId: String
    /// The newest `X-Client-State` the backend returned, echoed unchanged.
    public var clientState: String?
    public var contactToken: String?
    /// `X-Request-Order`: epoch milliseconds, strictly increasing per client.
    public var requestOrder: Int64
    /// How the app code is addressed on client-service calls (the app's configuration).
    public var codePath: MECodePath
    /// Which events API the device's calls use (the app's configuration, or the SDKs' choice for its platform).
    public var eventsAPIVersion: MEEventsAPIVersion

    public init(
        appCode: String, clientId: String, clientState: String?, contactToken: String?, requestOrder: Int64,
        codePath: MECodePath = .apps, eventsAPIVersion: MEEventsAPIVersion = .v3
    ) {
        self.appCode = appCode
        self.clientId = clientId
        self.clientState = clientState
        self.contactToken = contactToken
        self.requestOrder = requestOrder
        self.codePath = codePath
        self.eventsAPIVersion = eventsAPIVersion
    }
}
