import Foundation

/// A mutable MJCF (XML) element tree: enough XML to read third-party MJCF files, edit them and write the composed
/// scene back as text for `Model(xml:asIfAt:)`.
///
/// Handles what MJCF files contain: elements, attributes in single or double quotes, comments, the XML declaration and
/// the five predefined entities. Text content is dropped (MJCF keeps its data in attributes). Attribute order is kept.
public final class MJCFElement {
    public var name: String
    public private(set) var attributes: [(key: String, value: String)]
    public var children: [MJCFElement]

    public init(_ name: String, _ attributes: [(String, String)] = [], children: [MJCFElement] = []) {
        self.name = name
        self.attributes = attributes.map { (key: $0.0, value: $0.1) }
        self.children = children
    }

    public subscript(attribute: String) -> String? {
        get { attributes.first { $0.key == attribute }?.value }
        set {
            if let index = attributes.firstIndex(where: { $0.key == attribute }) {
                if let newValue { attributes[index].value = newValue } else { attributes.remove(at: index) }
            } else if let newValue {
                attributes.append((key: attribute, value: newValue))
            }
        }
    }

    /// The first child named `name`.
    public func child(_ name: String) -> MJCFElement? { children.first { $0.name == name } }

    /// The first child named `name`, appended empty if there is none.
    public func requireChild(_ name: String) -> MJCFElement {
        if let existing = child(name) { return existing }
        let created = MJCFElement(name)
        children.append(created)
        return created
    }

    /// This element and all its descendants, depth first.
    public var descendants: [MJCFElement] { [self] + children.flatMap { $0.descendants } }

    /// The first descendant (or self) named `name` whose `name` attribute is `value`.
    public func find(_ element: String, named value: String) -> MJCFElement? {
        descendants.first { $0.name == element && $0["name"] == value }
    }

    /// Removes the descendants for which `predicate` is true (with their subtrees).
    public func removeAll(where predicate: (MJCFElement) -> Bool) {
        children.removeAll(where: predicate)
        for child in children { child.removeAll(where: predicate) }
    }

    /// The numbers of a numeric attribute, or nil if it is absent.
    public func numbers(_ attribute: String) throws(MJCFError) -> [Double]? {
        guard let text = self[attribute] else { return nil }
        var values: [Double] = []
        for part in text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }) {
            guard let value = Double(part) else {
                throw .invalidNumber(element: name, attribute: attribute, text: text)
            }
            values.append(value)
        }
        return values
    }

    public func setNumbers(_ attribute: String, _ values: [Double]) {
        self[attribute] = values.map { formatNumber($0) }.joined(separator: " ")
    }

    // MARK: Text

    /// Parses one XML document; `source` names it in errors.
    public static func parse(_ text: String, source: String) throws(MJCFError) -> MJCFElement {
        var parser = Parser(bytes: Array(text.utf8), source: source)
        return try parser.document()
    }

    /// The element as XML text, indented by two spaces per level.
    public func xml() -> String {
        var out = ""
        write(into: &out, indent: 0)
        return out
    }

    private func write(into out: inout String, indent: Int) {
        out += String(repeating: "  ", count: indent) + "<" + name
        for (key, value) in attributes { out += " \(key)=\"\(Self.escape(value))\"" }
        if children.isEmpty {
            out += "/>\n"
            return
        }
        out += ">\n"
        for child in children { child.write(into: &out, indent: indent + 1) }
        out += String(repeating: "  ", count: indent) + "</\(name)>\n"
    }

    private static func escape(_ value: String) -> String {
        var out = ""
        for c in value {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}

/// Numbers in composed MJCF: shortest round-trip text, so composition loses no precision.
func formatNumber(_ value: Double) -> String {
    if value == value.rounded() && abs(value) < 1e15 { return String(Int(value)) }
    return "\(value)"
}

public enum MJCFError: Error, CustomStringConvertible, Equatable {
    case syntax(source: String, line: Int, message: String)
    case invalidNumber(element: String, attribute: String, text: String)
    case missing(source: String, what: String)

    public var description: String {
        switch self {
        case .syntax(let source, let line, let message):
            return "\(source), line \(line): \(message)"
        case .invalidNumber(let element, let attribute, let text):
            return "<\(element) \(attribute)=\"\(text)\">: not a list of numbers"
        case .missing(let source, let what):
            return "\(source) has no \(what); is it the file this flowpolicy version expects (see the asset manifest)?"
        }
    }
}

private struct Parser {
    let bytes: [UInt8]
    let source: String
    var index = 0

    init(bytes: [UInt8], source: String) {
        self.bytes = bytes
        self.source = source
    }

    var line: Int { bytes[..<min(index, bytes.count)].reduce(1) { $0 + ($1 == 10 ? 1 : 0) } }

    func error(_ message: String) -> MJCFError { .syntax(source: source, line: line, message: message) }

    mutating func document() throws(MJCFError) -> MJCFElement {
        var root: MJCFElement?
        while true {
            skipWhitespace()
            if index >= bytes.count { break }
            if starts(with: "<?") {
                try skip(past: "?>")
            } else if starts(with: "<!--") {
                try skip(past: "-->")
            } else if starts(with: "<!") {
                try skip(past: ">")
            } else if bytes[index] == UInt8(ascii: "<") {
                guard root == nil else { throw error("a second top-level element") }
                root = try element()
            } else {
                throw error("text outside the top-level element")
            }
        }
        guard let root else { throw error("no element") }
        return root
    }

    mutating func element() throws(MJCFError) -> MJCFElement {
        index += 1  // "<"
        let name = try identifier()
        let result = MJCFElement(name)
        while true {
            skipWhitespace()
            guard index < bytes.count else { throw error("<\(name)> is not closed") }
            if starts(with: "/>") {
                index += 2
                return result
            }
            if bytes[index] == UInt8(ascii: ">") {
                index += 1
                break
            }
            let key = try identifier()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else {
                throw error("attribute \(key) of <\(name)> has no value")
            }
            index += 1
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") else {
                throw error("the value of attribute \(key) of <\(name)> is not quoted")
            }
            let quote = bytes[index]
            index += 1
            let start = index
            while index < bytes.count && bytes[index] != quote { index += 1 }
            guard index < bytes.count else { throw error("the value of attribute \(key) is not closed") }
            let raw = String(decoding: bytes[start..<index], as: UTF8.self)
            index += 1
            result[key] = Self.unescape(raw)
        }
        // Content: children, comments, text (dropped), up to the closing tag.
        while true {
            guard index < bytes.count else { throw error("<\(name)> is not closed") }
            if starts(with: "</") {
                index += 2
                let closing = try identifier()
                guard closing == name else { throw error("</\(closing)> closes <\(name)>") }
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ">") else { throw error("bad closing tag") }
                index += 1
                return result
            } else if starts(with: "<!--") {
                try skip(past: "-->")
            } else if starts(with: "<![CDATA[") {
                try skip(past: "]]>")
            } else if bytes[index] == UInt8(ascii: "<") {
                result.children.append(try element())
            } else {
                index += 1
            }
        }
    }

    mutating func identifier() throws(MJCFError) -> String {
        let start = index
        while index < bytes.count {
            let c = bytes[index]
            let isName = (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39)
                || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") || c == UInt8(ascii: ":") || c == UInt8(ascii: ".")
            if !isName { break }
            index += 1
        }
        guard index > start else { throw error("expected a name") }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    func starts(with text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        let pointer = text.utf8Start
        for k in 0..<count where bytes[index + k] != pointer[k] { return false }
        return true
    }

    mutating func skip(past terminator: StaticString) throws(MJCFError) {
        while index < bytes.count {
            if starts(with: terminator) {
                index += terminator.utf8CodeUnitCount
                return
            }
            index += 1
        }
        throw error("unterminated \(terminator)")
    }

    static func unescape(_ text: String) -> String {
        guard text.contains("&") else { return text }
        return text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
