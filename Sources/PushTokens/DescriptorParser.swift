/// Reads one descriptor file strictly: unknown fields are errors (a misspelt "endpointHost" must not
/// silently leave a provider without hosts), and every error names the field.
enum DescriptorParser {
    /// Mobile Engage platforms a descriptor may name.
    static let platforms: Set<String> = ["android", "android-huawei", "ios", "chrome", "firefox", "safari", "edge"]

    private static let knownFields: Set<String> = [
        "id", "platform", "namespace", "kind", "endpointHosts", "endpointPathPrefixes", "minBytes", "maxBytes",
        "maxLength", "rejectsHexDeviceTokens", "rejectsWrapperIDs", "deviceTokenNamespace", "notes",
    ]

    static func parse(_ text: String, file: String) throws(DescriptorError) -> ProviderDescriptor {
        func fail(_ field: String, _ message: String) -> DescriptorError {
            DescriptorError(file: file, field: field, message: message)
        }
        guard case .object(let members)? = JSONParser.parse(text) else {
            throw fail("$", "not a JSON object (check the syntax)")
        }
        if let unknown = members.keys.sorted().first(where: { !knownFields.contains($0) }) {
            throw fail(unknown, "unknown field; known fields are \(knownFields.sorted().joined(separator: ", "))")
        }
        func string(_ field: String) throws(DescriptorError) -> String? {
            guard let value = members[field] else { return nil }
            guard case .string(let text) = value, !text.isEmpty else { throw fail(field, "must be a non-empty string") }
            return text
        }
        func required(_ field: String) throws(DescriptorError) -> String {
            guard let text = try string(field) else { throw fail(field, "is required") }
            return text
        }
        func integer(_ field: String, in range: ClosedRange<Int>) throws(DescriptorError) -> Int? {
            guard let value = members[field] else { return nil }
            guard case .integer(let number) = value, range.contains(Int(clamping: number)) else {
                throw fail(field, "must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return Int(number)
        }
        func boolean(_ field: String) throws(DescriptorError) -> Bool? {
            guard let value = members[field] else { return nil }
            guard case .bool(let flag) = value else { throw fail(field, "must be true or false") }
            return flag
        }
        func strings(_ field: String, valid: (String) -> Bool, expected: String) throws(DescriptorError) -> [String]? {
            guard let value = members[field] else { return nil }
            guard case .array(let elements) = value, !elements.isEmpty else { throw fail(field, "must be a non-empty array of strings") }
            var result: [String] = []
            for (index, element) in elements.enumerated() {
                guard case .string(let text) = element, valid(text) else {
                    throw fail("\(field)[\(index)]", "must be \(expected)")
                }
                result.append(text)
            }
            return result
        }

        let id = try required("id")
        guard id.utf8.allSatisfy({ isLowerAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }) else {
            throw fail("id", "must use only a-z, 0-9, '-' and '_'")
        }
        let platform = try required("platform")
        guard platforms.contains(platform) else {
            throw fail("platform", "'\(platform)' is not a Mobile Engage platform (\(platforms.sorted().joined(separator: ", ")))")
        }
        let namespace = try required("namespace")
        guard namespace.utf8.allSatisfy(isLowerAlnum) else { throw fail("namespace", "must use only a-z and 0-9") }
        let kindText = try required("kind")
        guard let kind = ProviderDescriptor.Kind(rawValue: kindText) else {
            throw fail("kind", "'\(kindText)' is not one of \(ProviderDescriptor.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var notes: String?
        if let value = members["notes"] {
            guard case .string(let text) = value else { throw fail("notes", "must be a string") }
            notes = text
        }
        var descriptor = ProviderDescriptor(id: id, platform: platform, namespace: namespace, kind: kind, notes: notes)
        descriptor.endpointHosts = try strings(
            "endpointHosts", valid: HostPattern.isValid, expected: "a lowercase host name or a '*.'-wildcard such as '*.notify.windows.com'")
        descriptor.endpointPathPrefixes = try strings(
            "endpointPathPrefixes", valid: { $0.hasPrefix("/") }, expected: "a path prefix starting with '/'")
        descriptor.minBytes = try integer("minBytes", in: 1...4096)
        descriptor.maxBytes = try integer("maxBytes", in: 1...4096)
        descriptor.maxLength = try integer("maxLength", in: 1...65536)
        descriptor.rejectsHexDeviceTokens = try boolean("rejectsHexDeviceTokens")
        descriptor.rejectsWrapperIDs = try boolean("rejectsWrapperIDs")
        descriptor.deviceTokenNamespace = try string("deviceTokenNamespace")

        try checkKindFields(descriptor, fail: fail)
        return descriptor
    }

    /// Each kind needs its own fields and must not carry another kind's.
    private static func checkKindFields(
        _ descriptor: ProviderDescriptor, fail: (String, String) -> DescriptorError
    ) throws(DescriptorError) {
        let usesHosts = descriptor.kind == .webpush || descriptor.kind == .safari
        let usesBytes = descriptor.kind == .apns || descriptor.kind == .safari
        let present: [(String, Bool, Bool)] = [
            ("endpointHosts", descriptor.endpointHosts != nil, usesHosts),
            ("endpointPathPrefixes", descriptor.endpointPathPrefixes != nil, usesHosts),
            ("minBytes", descriptor.minBytes != nil, usesBytes),
            ("maxBytes", descriptor.maxBytes != nil, usesBytes),
            ("maxLength", descriptor.maxLength != nil, descriptor.kind == .opaque),
            ("rejectsHexDeviceTokens", descriptor.rejectsHexDeviceTokens != nil, descriptor.kind == .opaque),
            ("rejectsWrapperIDs", descriptor.rejectsWrapperIDs != nil, descriptor.kind == .opaque || descriptor.kind == .apns),
            ("deviceTokenNamespace", descriptor.deviceTokenNamespace != nil, descriptor.kind == .safari),
        ]
        for (field, isPresent, isUsed) in present where isPresent && !isUsed {
            throw fail(field, "is not used by kind '\(descriptor.kind.rawValue)'")
        }
        if usesHosts, descriptor.endpointHosts == nil { throw fail("endpointHosts", "is required for kind '\(descriptor.kind.rawValue)'") }
        if usesBytes {
            guard let lower = descriptor.minBytes else { throw fail("minBytes", "is required for kind '\(descriptor.kind.rawValue)'") }
            guard let upper = descriptor.maxBytes else { throw fail("maxBytes", "is required for kind '\(descriptor.kind.rawValue)'") }
            if upper < lower { throw fail("maxBytes", "must not be below minBytes (\(lower))") }
        }
        if descriptor.kind == .safari, descriptor.deviceTokenNamespace == nil {
            throw fail("deviceTokenNamespace", "is required for kind 'safari'")
        }
        if let namespace = descriptor.deviceTokenNamespace, !namespace.utf8.allSatisfy(isLowerAlnum) {
            throw fail("deviceTokenNamespace", "must use only a-z and 0-9")
        }
    }

    private static func isLowerAlnum(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
}
