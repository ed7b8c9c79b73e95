import Foundation
import Testing
import TestSupport

/// Three `calgate serve` processes share one PostgreSQL: notifications round-robin over them, one is SIGKILLed
/// midway (the survivors take its partitions over) and later a new one joins (and takes its share of the
/// partitions); nothing acknowledged may be lost and no work may run twice. This runs `scripts/scale_out_test.py` (the same
/// test `scripts/scale-out-test` runs at full size) with the debug binary, on the server scripts/test started.
@Suite("Scale-out on PostgreSQL", .serialized)
struct ScaleOutTests {
    static var postgresURL: String? { ProcessInfo.processInfo.environment["CALGATE_TEST_POSTGRES_URL"] }
    static var required: Bool { ProcessInfo.processInfo.environment["CALGATE_REQUIRE_POSTGRES"] == "1" }

    @Test(.enabled(if: postgresURL != nil || required, "needs CALGATE_TEST_POSTGRES_URL (scripts/test starts a server)"))
    func threeInstancesLoseNothingAndDoNothingTwice() async throws {
        guard Self.postgresURL != nil else {
            Issue.record("CALGATE_REQUIRE_POSTGRES=1 but CALGATE_TEST_POSTGRES_URL is not set")
            return
        }
        let script = CalgateProcess.repositoryRoot.appendingPathComponent("scripts/scale_out_test.py").path
        let (status, output) = try await ChildProcess.run(
            "/usr/bin/env",
            [
                "python3", script, "--calgate", CalgateProcess.binary, "--notifications", "2000", "--appointments", "12",
                "--google-calendars", "6", "--graph-calendars", "3", "--seed", "20261205",
            ], timeout: .seconds(600))
        let verdict = output.split(separator: "\n").last { $0.hasPrefix("scale-out: ") }.map(String.init)
        #expect(status == 0, "scale-out test failed:\n\(output.suffix(6_000))")
        let line = try #require(verdict, "no verdict line:\n\(output.suffix(6_000))")
        #expect(line.hasSuffix(" 0 lost, 0 duplicated work"), "\(line)")
        let phases = output.split(separator: "\n").last { $0.hasPrefix("scale-out: phase 1") }.map(String.init)
        let phaseLine = try #require(phases, "no phase line:\n\(output.suffix(6_000))")
        #expect(!phaseLine.contains("?"), "both handovers happened: \(phaseLine)")
        let acked = Int(line.dropFirst("scale-out: ".count).prefix { $0.isNumber }) ?? 0
        #expect(acked > 1_500, "most of the 2,000 notifications are acknowledged (one instance of three dies midway): \(line)")
    }
}
