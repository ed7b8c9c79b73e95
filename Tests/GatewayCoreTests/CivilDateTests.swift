import GatewayCore
import Testing

@Suite("Civil date arithmetic")
struct CivilDateTests {
    @Test func dayCountsRoundTrip() {
        for days in stride(from: -800_000, through: 900_000, by: 7) {
            let (year, month, day) = CivilDate.date(days: days)
            #expect(CivilDate.days(year: year, month: month, day: day) == days)
        }
        #expect(CivilDate.date(days: 0) == (1970, 1, 1))
    }

    @Test func leapYearsAndNegativeCountsFollowTheGregorianRules() {
        #expect(CivilDate.date(days: -1) == (1969, 12, 31))
        #expect(CivilDate.days(year: 2000, month: 3, day: 1) - CivilDate.days(year: 2000, month: 2, day: 28) == 2)
        #expect(CivilDate.days(year: 1900, month: 3, day: 1) - CivilDate.days(year: 1900, month: 2, day: 28) == 1)
        #expect(CivilDate.days(year: 2024, month: 12, day: 31) - CivilDate.days(year: 2024, month: 1, day: 1) == 365)
        #expect(CivilDate.date(days: CivilDate.days(year: 1, month: 1, day: 1)) == (1, 1, 1))
    }

    @Test func floorDivisionRoundsDown() {
        #expect(CivilDate.floorDivide(-1, 86_400) == -1)
        #expect(CivilDate.floorDivide(-86_400, 86_400) == -1)
        #expect(CivilDate.floorDivide(86_399, 86_400) == 0)
        #expect(CivilDate.floorDivide(7, -2) == -4)
    }
}
