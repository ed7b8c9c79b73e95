import ArgumentParser
import CurlHTTP
import Foundation
import GatewayCore
import Logging
import ProviderSimulators
import ServiceLifecycle
import UnixSignals

/// `calgate simulate`: a provider simulator on its own, for pointing a gateway (or curl) at it by hand.
struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a loopback provider simulator: Google Calendar (OAuth, calendarList, events, watch/stop, pushes) or Microsoft Graph (Entra token, calendars, subscriptions with the validation handshake, notifications, lifecycle events, delta), each with a control API."
    )

    /// Which provider to simulate.
    enum SimulatedProvider: String, ExpressibleByArgument, CaseIterable {
        case google
        case microsoft
        case redtail
    }

    @Option(name: .customLong("provider"), help: "google, microsoft or redtail.")
    var provider: SimulatedProvider = .google

    @Option(name: .customLong("listen"), help: "HOST:PORT to listen on (plain HTTP, loopback only).")
    var listen: String = "127.0.0.1:8600"

    @Option(name: .customLong("ca"), help: "CA file the simulator trusts when it pushes to a gateway (e.g. certs/dev-ca.pem).")
    var caFile: String = "certs/dev-ca.pem"

    @Option(name: .customLong("refresh-token"), help: "A refresh token the OAuth endpoint accepts (repeatable; default 1//demo-refresh-token, or 0.AAAA-demo-refresh-token for microsoft).")
    var refreshTokens: [String] = []

    @Option(name: .customLong("channel-lifetime"), help: "Seconds a Google watch channel lives (default 604800, a week; google only).")
    var channelLifetime: Int?

    func run() async throws {
        let address: ListenAddress
        do { address = try ListenAddress(parsing: listen) } catch { throw CLIError("--listen: \(error.message)") }
        guard ["127.0.0.1", "::1", "localhost"].contains(address.host) else {
            throw CLIError("--listen: the simulator serves loopback only (127.0.0.1, ::1 or localhost)")
        }
        if let channelLifetime {
            guard provider == .google else { throw CLIError("--channel-lifetime: only the google simulator has watch channels") }
            guard (60...(30 * 86_400)).contains(channelLifetime) else { throw CLIError("--channel-lifetime: must be 60 to 2592000 seconds, found \(channelLifetime)") }
        }
        guard FileManager.default.isReadableFile(atPath: caFile) else {
            throw CLIError("--ca \(caFile): file does not exist; run `calgate certs dev` first or point --ca at the gateway's CA")
        }
        var pushConfiguration = CurlHTTPClient.Configuration()
        pushConfiguration.caBundlePath = caFile
        let pushClient = try CurlHTTPClient(configuration: pushConfiguration)
        let server: SimulatorServer
        let banner: String
        switch provider {
        case .google:
            let simulator = GoogleSimulator(
                refreshTokens: Set(refreshTokens.isEmpty ? ["1//demo-refresh-token"] : refreshTokens), pushClient: pushClient,
                channelLifetime: TimeInterval(channelLifetime ?? 7 * 86_400)
            )
            server = try await SimulatorServer(router: simulator.makeRouter(), host: address.host, port: address.port)
            banner = """
                Google simulator on \(server.baseURL)
                  gateway settings:  "google": {"token_url": "\(server.baseURL)/token", "api_base_url": "\(server.baseURL)/calendar/v3"}
                  change an event:   curl -X POST \(server.baseURL)/control/calendars/primary/events -d '{"summary":"x","start":{"dateTime":"2026-12-01T10:00:00Z"},"end":{"dateTime":"2026-12-01T11:00:00Z"}}'
                  inject a fault:    curl -X POST \(server.baseURL)/control/faults/rate_limit   (\(GoogleSimulator.Fault.allCases.map(\.rawValue).joined(separator: ", ")))
                """
        case .microsoft:
            let simulator = GraphSimulator(refreshTokens: Set(refreshTokens.isEmpty ? ["0.AAAA-demo-refresh-token"] : refreshTokens), pushClient: pushClient)
            server = try await SimulatorServer(router: simulator.makeRouter(), host: address.host, port: address.port)
            banner = """
                Microsoft Graph simulator on \(server.baseURL)
                  gateway settings:  "microsoft": {"token_url": "\(server.baseURL)/common/oauth2/v2.0/token", "api_base_url": "\(server.baseURL)/v1.0"}
                  change an event:   curl -X POST \(server.baseURL)/control/calendars/\(GraphSimulator.defaultCalendarID)/events -d '{"subject":"x","start":{"dateTime":"2026-12-01T10:00:00.0000000","timeZone":"UTC"},"end":{"dateTime":"2026-12-01T11:00:00.0000000","timeZone":"UTC"}}'
                  subscriptions:     curl \(server.baseURL)/control/subscriptions
                  lifecycle event:   curl -X POST \(server.baseURL)/control/subscriptions/<id>/lifecycle/reauthorizationRequired
                  inject a fault:    curl -X POST \(server.baseURL)/control/faults/rate_limit   (\(GraphSimulator.Fault.allCases.map(\.rawValue).joined(separator: ", ")))
                """
        case .redtail:
            let simulator = RedtailSimulator(users: [
                RedtailSimulator.User(
                    apiKey: "demo-redtail-api-key", username: "advisor1", password: "demo-password",
                    userKey: "B7B4BCDD-DEMO-449C-B1D4-C1AAFE49703D", id: 41_974
                )
            ])
            server = try await SimulatorServer(router: simulator.makeRouter(), host: address.host, port: address.port)
            banner = """
                Redtail simulator on \(server.baseURL) (user advisor1 / demo-password, API key demo-redtail-api-key)
                  gateway settings:  "redtail": {"base_url": "\(server.baseURL)/api/public/v1"}
                  add an activity:   curl -X POST \(server.baseURL)/control/users/advisor1/activities -d '{"subject":"x","start_date":"2026-12-01T10:00:00Z","end_date":"2026-12-01T11:00:00Z"}'
                  inject a fault:    curl -X POST \(server.baseURL)/control/faults/rate_limit   (\(RedtailSimulator.Fault.allCases.map(\.rawValue).joined(separator: ", ")))
                """
        }
        FileHandle.standardOutput.write(Data((banner + "\nCtrl-C stops it.\n\n").utf8))
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        for await _ in signals { break }
        await server.stop()
        await pushClient.shutdown()
    }
}
