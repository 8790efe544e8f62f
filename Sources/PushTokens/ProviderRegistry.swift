import Foundation

/// The providers a service knows, by id, and the entry point for normalising tokens.
///
/// A value type: build it once at start-up (`builtIn`, then `merging(directory:)` for operator
/// overrides) and pass it where tokens are read.
public struct ProviderRegistry: Sendable {
    private let descriptorsByID: [String: ProviderDescriptor]
    private let hints: ProviderHints

    /// The descriptors of `providers/`, compiled in.
    public static let builtIn: ProviderRegistry = {
        var descriptors: [ProviderDescriptor] = []
        for file in BuiltInProviders.files {
            do {
                descriptors.append(try DescriptorParser.parse(file.json, file: "providers/\(file.name)"))
            } catch {
                // Unreachable unless BuiltInProviders.swift was edited by hand: the test suite parses
                // every built-in file and compares it with providers/.
                preconditionFailure("built-in provider descriptor is invalid: \(error)")
            }
        }
        return ProviderRegistry(descriptors: descriptors)
    }()

    /// A registry of exactly these descriptors; a later descriptor replaces an earlier one with the same id.
    public init(descriptors: [ProviderDescriptor]) {
        var byID: [String: ProviderDescriptor] = [:]
        for descriptor in descriptors { byID[descriptor.id] = descriptor }
        descriptorsByID = byID
        hints = ProviderHints(descriptors: byID.values.sorted { $0.id < $1.id })
    }

    /// This registry plus the `*.json` files of `directory`: a file adds a provider or replaces the
    /// built-in one with the same id (whole descriptor, not field by field). A missing directory
    /// changes nothing; an invalid file, or two files with one id, throws `DescriptorError`.
    public func merging(directory: String) throws -> ProviderRegistry {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: directory, isDirectory: &isDirectory) else { return self }
        guard isDirectory.boolValue else {
            throw DescriptorError(file: directory, field: "$", message: "is not a directory of provider descriptors")
        }
        let names: [String]
        do {
            names = try fileManager.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }.sorted()
        } catch {
            throw DescriptorError(file: directory, field: "$", message: "cannot be listed: \(error)")
        }
        var merged = descriptorsByID
        var fileByID: [String: String] = [:]
        for name in names {
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            guard let data = fileManager.contents(atPath: path) else {
                throw DescriptorError(file: path, field: "$", message: "cannot be read")
            }
            guard let text = String(validating: data, as: UTF8.self) else {
                throw DescriptorError(file: path, field: "$", message: "is not UTF-8 text")
            }
            let descriptor = try DescriptorParser.parse(text, file: path)
            if let other = fileByID[descriptor.id] {
                throw DescriptorError(file: path, field: "id", message: "'\(descriptor.id)' is also defined in \(other)")
            }
            fileByID[descriptor.id] = path
            merged[descriptor.id] = descriptor
        }
        return ProviderRegistry(descriptors: merged.values.sorted { $0.id < $1.id })
    }

    /// Provider ids, sorted.
    public var providerIDs: [String] { descriptorsByID.keys.sorted() }

    public func descriptor(for id: String) -> ProviderDescriptor? { descriptorsByID[id] }

    /// Validates and canonicalises one token for the provider `provider` (an id, matched exactly).
    ///
    /// `environment` is the APNs environment ("production" or "sandbox"); it is checked and kept
    /// for the `apns` kind and ignored for every other kind.
    public func normalize(provider: String, input: TokenInput, environment: String? = nil) throws(TokenRejection) -> NormalizedToken {
        guard let descriptor = descriptorsByID[provider] else {
            let known = providerIDs.joined(separator: ", ")
            throw TokenRejection(
                TokenRejection.Rule.unknownProvider,
                "there is no provider '\(provider.prefix(64))'; known providers are \(known).",
                hint: hints.hint(for: input))
        }
        let plugin = TokenPlugins.plugin(for: descriptor.kind)
        let request = TokenRequest(input: input, environment: environment, descriptor: descriptor, hints: hints)
        return try plugin.normalize(request)
    }
}
