import Foundation
import NIOCore
import TLSTestClient
import Testing
@testable import OpenSSLTLS

extension OpenSSLTLSTests {
    /// How the handler moves bytes, buffers writes and ends connections.
    @Suite struct ServerHandler {
        @Test func writesMadeBeforeTheHandshakeWaitForIt() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration()), greeting: "welcome\n") { server throws in
                let client = try TLSTestClient.connect(port: server.port, options: certs.verifyingClient())
                #expect(try client.read(until: "welcome\n") == "welcome\n")
                #expect(try client.echo("after") == "echo:after")
            }
        }

        @Test func eachFlushBecomesOneCiphertextWriteAndCompletesEveryPromise() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let client = try TLSTestClient.connect(port: server.port)
                _ = try client.echo("warm-up")  // handshake flights and tickets are behind us
                let before = server.recorder.snapshot
                try client.write("multi")
                #expect(try client.read(until: "abc") == "abc")
                #expect(await eventually { server.recorder.snapshot.succeededPromises == 3 })
                let after = server.recorder.snapshot
                #expect(after.socketWrites - before.socketWrites == 1)
                #expect(after.failedPromises == 0)
            }
        }

        @Test func plaintextBuffersAreSizedToWhatArrived() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let client = try TLSTestClient.connect(port: server.port)
                #expect(try client.echo("0123456789") == "echo:0123456789")
                let inbound = server.recorder.snapshot.inbound
                #expect(inbound.count == 1)
                #expect(inbound.first?.bytes == 10)
                #expect((inbound.first?.capacity ?? .max) <= 64, "a 10-byte record should not get a 16 KiB buffer: \(inbound)")
            }
        }

        @Test func largeResponsesAndLargeRequestsCrossRecordBoundaries() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let client = try TLSTestClient.connect(port: server.port)
                try client.write("big:100000")
                let body = try client.read(exactly: 100_000)
                #expect(body.allSatisfy { $0 == UInt8(ascii: "x") })

                let request = [UInt8](repeating: UInt8(ascii: "y"), count: 50_000)
                try client.write(request)
                #expect(try client.readCounting(UInt8(ascii: "y"), upTo: request.count) == request.count)
                let recorder = server.recorder
                #expect(await eventually { recorder.inboundBytes(droppingFirst: 1) == 50_000 })
                #expect(server.recorder.snapshot.inbound.allSatisfy { $0.capacity <= 16_384 })
            }
        }

        @Test func aClientSendingOneByteAtATimeIsServed() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                // The ClientHello and Finished trickle in as 1-byte TCP segments, then each plaintext byte is its own record.
                let client = try TLSTestClient.connect(port: server.port, options: certs.verifyingClient(.init(fragmentSize: 1)))
                try client.write(Array("abc".utf8), inChunksOf: 1)
                #expect(try client.read(until: "echo:c") == "echo:aecho:becho:c")
                #expect(server.context.handshakesCompleted == 1)
            }
        }

        @Test func theServerSendsCloseNotifyWhenTheApplicationCloses() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let client = try TLSTestClient.connect(port: server.port)
                try client.write("quit")
                #expect(try client.readUntilClose() == Array("bye\n".utf8))
                #expect(client.receivedCloseNotify)
                #expect(client.waitForTCPClose(timeout: .seconds(2)))
                #expect(await eventually { server.recorder.snapshot.closedConnections == 1 })
                #expect(server.recorder.snapshot.errors.isEmpty)
            }
        }

        @Test func closingOnlyTheOutputSendsCloseNotifyAndKeepsReading() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let client = try TLSTestClient.connect(port: server.port)
                try client.write("half")
                #expect(try client.readUntilClose() == Array("half\n".utf8))
                #expect(client.receivedCloseNotify)
                #expect(await eventually { server.recorder.snapshot.outputClosed })
                // The server still reads: TLS allows data after one side's close_notify.
                try client.write("more")
                #expect(await eventually { server.recorder.snapshot.inbound.count == 2 })
                try client.sendCloseNotify()
                #expect(client.waitForTCPClose(timeout: .seconds(2)))
                #expect(await eventually { server.recorder.snapshot.closedConnections == 1 })
            }
        }

        @Test func withAutoReadOffTheHandlerAsksForTheReadsTheHandshakeNeeds() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration()), autoRead: false) { server throws in
                // The application asks for one read at a time and only sees plaintext; the handshake takes several reads.
                let client = try TLSTestClient.connect(port: server.port, options: .init(fragmentSize: 7))
                #expect(try client.echo("manual") == "echo:manual")
                #expect(try client.echo("again") == "echo:again")
                // channelReadComplete reaches the application only for reads that delivered plaintext.
                let recorder = server.recorder
                #expect(await eventually { recorder.snapshot.readCompletes == 2 })
                #expect(recorder.snapshot.inbound.count == 2)
            }
        }

        @Test func aClientCloseNotifyIsAnsweredAndTheConnectionCloses() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let client = try TLSTestClient.connect(port: server.port)
                _ = try client.echo("x")
                try client.sendCloseNotify()
                #expect(try client.readUntilClose().isEmpty)
                #expect(client.receivedCloseNotify)
                #expect(client.waitForTCPClose(timeout: .seconds(2)))
                #expect(await eventually { server.recorder.snapshot.closedConnections == 1 })
                #expect(server.recorder.snapshot.errors.isEmpty)
            }
        }

        @Test func anUncleanEOFJustClosesTheConnection() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let client = try TLSTestClient.connect(port: server.port)
                _ = try client.echo("x")
                client.close()
                #expect(await eventually { server.recorder.snapshot.closedConnections == 1 })
                #expect(server.recorder.snapshot.errors.isEmpty)
                #expect(server.context.handshakeFailures == 0)
                #expect(server.context.handshakesCompleted == 1)
            }
        }

        @Test func aCorruptRecordIsReportedAndTheConnectionClosed() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let client = try TLSTestClient.connect(port: server.port)
                _ = try client.echo("x")
                // An application-data record whose ciphertext and tag are garbage: decryption must fail.
                try client.writeRaw([0x17, 0x03, 0x03, 0x00, 0x20] + [UInt8](repeating: 0xAB, count: 32))
                let error = #expect(throws: TLSTestClientError.ioFailed) { try client.readUntilClose() }
                #expect(error?.message.contains("bad record mac") == true, "\(String(describing: error))")
                #expect(await eventually { server.recorder.snapshot.errors.contains { ($0 as? OpenSSLHandlerError) == .protocolError } })
                #expect(await eventually { server.recorder.snapshot.closedConnections == 1 })
            }
        }

        @Test func anIdleClientIsCutAtTheHandshakeTimeout() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            let context = try TLSServerContext(configuration: certs.configuration(handshakeTimeout: .milliseconds(300)))
            try await TLSTestServer.with(context: context) { server throws in
                let idle = try TLSTestClient.rawTCPConnect(port: server.port)
                let partial = try TLSTestClient.rawTCPConnect(port: server.port)
                try partial.write([0x16, 0x03, 0x01, 0x02])  // the first bytes of a ClientHello, then nothing
                let start = ContinuousClock.now
                #expect(idle.waitForClose(timeout: .seconds(3)))
                #expect(partial.waitForClose(timeout: .seconds(3)))
                #expect(ContinuousClock.now - start < .seconds(2))
                #expect(await eventually { server.context.handshakeFailures == 2 })
                #expect(server.context.handshakesCompleted == 0)
            }
        }

        @Test func aClientThatHalfClosesDuringTheHandshakeIsCutAtOnce() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration()), allowHalfClosure: true) { server throws in
                let raw = try TLSTestClient.rawTCPConnect(port: server.port)
                raw.shutdownWrite()
                #expect(raw.waitForClose(timeout: .seconds(2)))
                #expect(await eventually { server.context.handshakeFailures == 1 })
            }
        }

        @Test func plaintextOnTheTLSPortIsRefused() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let raw = try TLSTestClient.rawTCPConnect(port: server.port)
                try raw.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(raw.waitForClose(timeout: .seconds(2)))
                #expect(await eventually { server.context.handshakeFailures == 1 })
                #expect(server.recorder.snapshot.handshakes.isEmpty)
            }
        }

        @Test func manyConcurrentConnectionsShareOneEventLoop() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let port = server.port
                let failures = await withTaskGroup(of: String?.self) { group in
                    for index in 0..<16 {
                        group.addTask {
                            do {
                                let client = try TLSTestClient.connect(port: port)
                                let answer = try client.echo("n\(index)")
                                try client.sendCloseNotify()
                                return answer == "echo:n\(index)" ? nil : "wrong answer \(answer)"
                            } catch {
                                return "\(error)"
                            }
                        }
                    }
                    var failures: [String] = []
                    for await failure in group { if let failure { failures.append(failure) } }
                    return failures
                }
                #expect(failures.isEmpty)
                #expect(await eventually { server.context.handshakesCompleted == 16 })
            }
        }
    }
}
