/// A provider descriptor file that cannot be used, naming the file and the field so an operator
/// can fix it without reading code.
public struct DescriptorError: Error, CustomStringConvertible {
    /// The file path as it was read.
    public var file: String
    /// The offending field, e.g. "endpointHosts[1]"; "$" for the document as a whole.
    public var field: String
    public var message: String

    public init(file: String, field: String, message: String) {
        self.file = file
        self.field = field
        self.message = message
    }

    public var description: String { "\(file): field '\(field)': \(message)" }
}
