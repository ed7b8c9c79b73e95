import Foundation
import GatewayCore
import Testing

/// Issue 20: a fleet's channels are created together (a deploy, the end of an outage), yet their renewals spread
/// over hours, so no renewal pass (every 5 minutes) carries more than a small share of them.
@Suite("Renewal spread")
struct RenewalSpreadTests {
    @Test(arguments: [7 * 86_400.0, 4_230 * 60.0]) func aThousandChannelsCreatedTogetherRenewOverHours(life: TimeInterval) {
        let created = Date(timeIntervalSince1970: 1_800_000_000)
        let expires = created.addingTimeInterval(life)
        let policy = RenewalPolicy()
        let due = (0..<1_000).map { index -> Date in
            let id = "channel-\(UUID(uuidString: String(format: "00000000-0000-4000-8000-%012d", index))!.uuidString.lowercased())"
            return expires.addingTimeInterval(-policy.lead(id: id, createdAt: created, expiresAt: expires))
        }
        let passes = Dictionary(grouping: due) { Int($0.timeIntervalSince1970 / 300) }
        let span = (due.max() ?? created).timeIntervalSince(due.min() ?? created)
        #expect(span >= 0.09 * max(86_400, life * 0.25), "the jitter spreads them over a tenth of the lead (\(span) s)")
        #expect((passes.values.map(\.count).max() ?? 0) <= 60, "no 5-minute renewal pass carries more than 6 % of them")
        #expect(due.allSatisfy { $0 > created && $0 < expires })
    }
}
