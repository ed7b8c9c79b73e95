import ArgumentParser
import Foundation
import OpenSSLTLS

/// `calgate certs dev`: a local CA and a server certificate for localhost, 127.0.0.1 and ::1.
struct Certs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage TLS certificates.",
        subcommands: [Dev.self]
    )

    struct Dev: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a development CA and a server certificate in the certs directory (keys mode 0600, git-ignored)."
        )

        @Option(name: .customLong("dir"), help: "Directory to write into.")
        var directory: String = "certs"

        @Option(name: .customLong("dns-name"), help: "Extra DNS name for the server certificate (repeatable).")
        var dnsNames: [String] = []

        func run() throws {
            do {
                let paths = try DevCertificateAuthority.generate(directory: directory, extraDNSNames: dnsNames)
                print("dev CA certificate:     \(paths.caCertificate)  (trust this in clients and simulators)")
                print("dev CA key:             \(paths.caKey)")
                print("server certificate:     \(paths.serverCertificate)")
                print("server key:             \(paths.serverKey)")
            } catch {
                throw CLIError("cannot create dev certificates in \(directory): \(error)")
            }
        }
    }
}
