import Foundation
import GatewayCore
import GatewayHTTP
import Logging
import SQLiteStore
import ServiceLifecycle
import TestSupport
import Testing

@Suite("Route registry and lifecycle")
struct RegistryAndLifecycleTests {
    @Test func staticCatalogMatchesTheRegistryTheServerBuilds() async throws {
        let gateway = try await GatewayHarness()
        defer { Task { await gateway.shutdown() } }
        let deps = GatewayServerDependencies(
            configuration: GatewayConfiguration(), adminToken: gateway.adminToken, apiToken: gateway.apiToken, plugins: GatewayHarness.plugins(),
            store: gateway.store, sealer: gateway.sealer,
            tlsContext: gateway.tlsContext, metrics: gateway.metrics, version: "t", logger: Logger(label: "t")
        )
        let live = GatewayServer.makeRegistry(deps).catalog
        let declared = GatewayServer.catalog(plugins: GatewayHarness.plugins())
        #expect(live.handlers == declared.handlers)
        #expect(live.verifiers == declared.verifiers)
    }

    @Test func routeLoaderRejectsMissingAndEmptyDirectories() throws {
        let dir = GatewayHarness.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: RouteTableLoadError.self) { try RouteTableLoader.load(directory: dir + "/missing", catalog: GatewayServer.catalog(plugins: GatewayHarness.plugins())) }
        #expect(throws: RouteTableLoadError.self) { try RouteTableLoader.load(directory: dir, catalog: GatewayServer.catalog(plugins: GatewayHarness.plugins())) }
        _ = FileManager.default.createFile(atPath: dir + "/file.json", contents: Data("{}".utf8))
        #expect(throws: RouteTableLoadError.self) { try RouteTableLoader.load(directory: dir + "/file.json", catalog: GatewayServer.catalog(plugins: GatewayHarness.plugins())) }
        do {
            _ = try RouteTableLoader.load(directory: dir, catalog: GatewayServer.catalog(plugins: GatewayHarness.plugins()))
        } catch {
            #expect(error.description.contains("file.json: has no \"routes\" array"))
        }
        let table = try RouteTableLoader.load(directory: GatewayHarness.repositoryRoutes, catalog: GatewayServer.catalog(plugins: GatewayHarness.plugins()))
        #expect(table.entries.contains { $0.path == "/admin/health" })
    }

    @Test func gracefulShutdownLosesNoAcknowledgedInboxRow() async throws {
        let dir = GatewayHarness.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/calgate.sqlite"
        let store = try SQLiteStore(path: path)
        let logger = Logger(label: "test")
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: StoreLifecycleService(store: store, logger: logger))], logger: logger
            ))
        let run = Task { try await group.run() }
        // Writers append concurrently while shutdown begins; every append that returned must be on disk.
        let acknowledged = await withTaskGroup(of: [String].self) { tasks in
            for writer in 0..<8 {
                tasks.addTask {
                    var acked: [String] = []
                    for i in 0..<200 {
                        let key = "w\(writer)-\(i)"
                        let entry = InboxEntry(provider: .google, channelID: "ch-\(writer)", dedupeKey: key, kind: "exists", receivedAt: Date())
                        do {
                            _ = try await store.append([entry])
                            acked.append(key)
                        } catch {
                            break
                        }
                    }
                    return acked
                }
            }
            tasks.addTask {
                try? await Task.sleep(for: .milliseconds(30))
                await group.triggerGracefulShutdown()
                return []
            }
            var all: [String] = []
            for await keys in tasks { all += keys }
            return all
        }
        try await run.value
        let reopened = try SQLiteStore(path: path)
        let pending = try await reopened.pending(limit: 10_000)
        let stored = Set(pending.compactMap(\.entry.dedupeKey))
        #expect(!acknowledged.isEmpty)
        #expect(Set(acknowledged).isSubset(of: stored), "\(Set(acknowledged).subtracting(stored).count) acknowledged rows lost")
        await reopened.close()
    }
}
