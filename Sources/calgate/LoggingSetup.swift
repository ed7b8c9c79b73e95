import GatewayCore
import GatewayHTTP
import Logging

/// Bootstraps swift-log once, in text or JSON, at the configured level.
enum LoggingSetup {
    static func bootstrap(level: String, format: GatewayConfiguration.LogFormat) -> Logger {
        let logLevel = Logger.Level(rawValue: level) ?? .info
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler
            switch format {
            case .text: handler = StreamLogHandler.standardError(label: label)
            case .json: handler = JSONLogHandler(label: label)
            }
            handler.logLevel = logLevel
            return handler
        }
        return Logger(label: "calgate")
    }
}
