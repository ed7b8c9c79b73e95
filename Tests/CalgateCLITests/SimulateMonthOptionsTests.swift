import Foundation
import Testing

/// `calgate simulate-month`'s new options (issue 20) refuse bad input with a clear message before anything starts.
@Suite("simulate-month options")
struct SimulateMonthOptionsTests {
    let routes = CalgateProcess.repositoryRoot.appendingPathComponent("routes").path

    @Test(arguments: [
        (["--calendars", "0"], "--calendars must be between 3 and 5000 (got 0)"),
        (["--calendars=-4"], "--calendars must be between 3 and 5000 (got -4)"),
        (["--calendars", "5001", "--fleet"], "--calendars must be between 3 and 5000 (got 5001)"),
        (["--calendars", "many"], "many"),
        (["--fleet", "--failure-rate", "0.9"], "--failure-rate must be between 0 and 0.5"),
        (["--fleet", "--report", "/nonexistent-dir/fleet.md"], "--report /nonexistent-dir/fleet.md: the directory /nonexistent-dir does not exist"),
    ])
    func badOptionsAreRefusedWithAClearMessage(arguments: [String], message: String) async throws {
        let result = try await CalgateProcess.run(["simulate-month", "--routes", routes] + arguments)
        #expect(result.status != 0)
        #expect(result.output.contains(message), "\(result.output)")
        #expect(!result.output.contains("day 0"), "nothing may start")
    }
}
