/// Adds the struct's public memberwise initializer: every stored property a parameter in declaration order, a
/// `var`'s initial value its default (see `MemberwiseInitMacro` for the rules). For value types whose initializer
/// only copies its arguments; one that checks or derives anything is written by hand.
@attached(member, names: named(init))
public macro MemberwiseInit() = #externalMacro(module: "CalgateMacroPlugin", type: "MemberwiseInitMacro")
