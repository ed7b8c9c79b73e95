import SwiftCompilerPlugin
import SwiftDiagnostics
import SwiftSyntax
import SwiftSyntaxMacros

/// `@MemberwiseInit`: a public memberwise initializer for a struct, the one Swift synthesizes but public (Swift's own
/// is internal at most, so every public value type used to spell it out by hand).
///
/// Every stored instance property becomes a parameter, in declaration order, labelled with its name; a `var` with an
/// initial value makes that value the parameter's default, a `let` with one is left out (it cannot be assigned), and a
/// function-typed parameter is `@escaping`. Computed properties, `static` and `lazy` ones are not parameters.
public struct MemberwiseInitMacro: MemberMacro {
    public static func expansion(
        of node: AttributeSyntax, providingMembersOf declaration: some DeclGroupSyntax, conformingTo protocols: [TypeSyntax],
        in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] {
        guard declaration.is(StructDeclSyntax.self) else {
            context.diagnose(Diagnostic(node: node, message: MemberwiseInitDiagnostic.notAStruct))
            return []
        }
        var parameters: [String] = []
        var assignments: [String] = []
        for member in declaration.memberBlock.members {
            guard let variable = member.decl.as(VariableDeclSyntax.self), !variable.isStatic else { continue }
            let isLet = variable.bindingSpecifier.tokenKind == .keyword(.let)
            let bindings = Array(variable.bindings)
            for (index, binding) in bindings.enumerated() {
                guard let name = binding.pattern.as(IdentifierPatternSyntax.self)?.identifier.trimmedDescription else { continue }
                if binding.isComputed { continue }
                if isLet, binding.initializer != nil { continue }
                // `var a, b: Int`: only the last binding carries the type.
                guard let type = bindings[index...].lazy.compactMap({ $0.typeAnnotation?.type }).first else {
                    context.diagnose(Diagnostic(node: Syntax(binding), message: MemberwiseInitDiagnostic.missingType(name)))
                    return []
                }
                let escaping = type.isFunction ? "@escaping " : ""
                let defaultValue = binding.initializer.map { " = \($0.value.trimmedDescription)" } ?? ""
                parameters.append("\(name): \(escaping)\(type.trimmedDescription)\(defaultValue)")
                assignments.append("self.\(name) = \(name)")
            }
        }
        let body = assignments.map { "    \($0)" }.joined(separator: "\n")
        return ["public init(\(raw: parameters.joined(separator: ", "))) {\n\(raw: body)\n}"]
    }
}

/// What `@MemberwiseInit` refuses.
enum MemberwiseInitDiagnostic: DiagnosticMessage {
    case notAStruct
    case missingType(String)

    var message: String {
        switch self {
        case .notAStruct: "@MemberwiseInit applies to structs only"
        case .missingType(let name): "@MemberwiseInit needs the type of '\(name)' written out (it cannot infer it from the initial value)"
        }
    }

    var diagnosticID: MessageID {
        switch self {
        case .notAStruct: MessageID(domain: "CalgateMacros", id: "notAStruct")
        case .missingType: MessageID(domain: "CalgateMacros", id: "missingType")
        }
    }

    var severity: DiagnosticSeverity { .error }
}

extension VariableDeclSyntax {
    var isStatic: Bool {
        modifiers.contains { [.keyword(.static), .keyword(.class), .keyword(.lazy)].contains($0.name.tokenKind) }
    }
}

extension PatternBindingSyntax {
    /// A getter, or `get`/`set` accessors; observers (`willSet`, `didSet`) leave a property stored.
    var isComputed: Bool {
        guard let accessorBlock else { return false }
        switch accessorBlock.accessors {
        case .getter: return true
        case .accessors(let accessors):
            return accessors.contains { [.keyword(.get), .keyword(.set), .keyword(._read), .keyword(._modify)].contains($0.accessorSpecifier.tokenKind) }
        }
    }
}

extension TypeSyntax {
    /// A closure type (with or without attributes such as `@Sendable`), which a parameter must mark `@escaping`.
    var isFunction: Bool {
        if `is`(FunctionTypeSyntax.self) { return true }
        if let attributed = `as`(AttributedTypeSyntax.self) { return attributed.baseType.isFunction }
        return false
    }
}

@main
struct CalgateMacroPlugin: CompilerPlugin {
    let providingMacros: [any Macro.Type] = [MemberwiseInitMacro.self]
}
