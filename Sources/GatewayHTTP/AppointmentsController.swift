import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The appointment side of `/api/v1`: reads with visibility, categories on (otherwise read-only) imports,
/// LeadCenter-created appointments, and availability without details.
public struct AppointmentsController: Sendable {
    let store: any GatewayStore
    /// Providers whose calendars can be the "Add to calendar" target.
    let pushTargets: [Provider]
    /// The OpenAPI document served at `/api/v1/openapi.json`, serialized once.
    let openAPIDocument: [UInt8]
    let clock: any GatewayClock
    let logger: Logger

    /// Creates the controller.
    public init(
        store: any GatewayStore, pushTargets: [Provider], openAPIDocument: JSONValue, clock: any GatewayClock = SystemGatewayClock(), logger: Logger
    ) {
        self.pushTargets = pushTargets
        self.openAPIDocument = openAPIDocument.serialized()
        self.store = store
        self.clock = clock
        self.logger = logger
    }

    /// Registers the handlers (the `api_token` verifier comes from `ConnectionsController`).
    public func register(into registry: inout RouteRegistry) {
        registry.register("api.appointments.list", ConnectionsController.spec(["GET"])) { try await list($0) }
        registry.register("api.appointments.create", ConnectionsController.spec(["POST"], body: 65_536)) { try await create($0) }
        registry.register("api.appointments.update", ConnectionsController.spec(["PATCH"], body: 65_536)) { try await update($0) }
        registry.register("api.appointments.delete", ConnectionsController.spec(["DELETE"])) { call in
            guard let id = call.parameters["id"] else { throw GatewayHTTPError.notFound("no appointment with this id") }
            guard id.hasPrefix("lc_") else { throw Self.readOnly(nil) }
            guard try await store.leadCenterAppointment(id: id) != nil else { throw GatewayHTTPError.notFound("no appointment with this id") }
            // Pushed (or about to be): the provider delete is a durable job; otherwise the row just goes.
            let state = try await store.pushState(appointmentID: id)
            var target = state?.calendarKey
            if target == nil, state?.status == "pending" { target = try await store.pushTarget(userID: try await ownerOf(id)) }
            try await store.markLeadCenterAppointmentDeleted(id: id, push: target.map { (.delete, $0) })
            return Response(status: .noContent)
        }
        registry.register("api.push_target.get", ConnectionsController.spec(["GET"])) { call in
            guard let user = call.parameters["user"], !user.isEmpty else { throw GatewayHTTPError.badRequest("user is required") }
            return ConnectionsController.json(try await pushTargetRepresentation(user))
        }
        registry.register("api.push_target.set", ConnectionsController.spec(["PUT"], body: 4096)) { try await setPushTarget($0) }
        registry.register("api.imported.update", ConnectionsController.spec(["PATCH"], body: 16_384)) { try await updateImported($0) }
        registry.register("api.imported.delete", ConnectionsController.spec(["DELETE"])) { call in
            let (connection, _, _) = try await imported(call)
            throw Self.readOnly(connection.provider)
        }
        registry.register("api.openapi", ConnectionsController.spec(["GET"])) { _ in
            Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-cache"],
                body: .init(byteBuffer: ByteBuffer(bytes: openAPIDocument))
            )
        }
        registry.register("api.availability", ConnectionsController.spec(["GET"])) { try await availability($0) }
    }

    // MARK: Reads

    /// `GET /api/v1/appointments?user=…[&viewer=…][&account=…][&from=…&to=…]`.
    func list(_ call: RouteCall) async throws -> Response {
        let query = call.request.uri.queryParameters
        guard let user = query.get("user").map({ String($0) }), !user.isEmpty else { throw GatewayHTTPError.badRequest("user is required") }
        let viewer = query.get("viewer").map { String($0) } ?? user
        let account = query.get("account").map { String($0) }
        let (from, to) = try Self.window(query)
        // A bounded range returns a series' occurrences in it; without one, series come as their masters.
        let expand = query.get("from") != nil && query.get("to") != nil
        if expand, to.timeIntervalSince(from) > 366 * 86_400 {
            throw GatewayHTTPError.badRequest("a range (from and to) may span at most 366 days")
        }
        var items: [JSONValue] = []
        for connection in try await store.connections(userID: user)
        where connection.state != .disconnected && connection.isVisible(to: viewer, viewerAccount: account) {
            for calendar in try await store.calendars(connectionID: connection.id) where calendar.selected {
                let categories = try await store.categories(calendarKey: calendar.calendarKey)
                // Events calgate pushed there come back through the calendar's sync: they are the LeadCenter
                // appointment, shown once as such.
                let pushed = try await store.pushedExternalIDs(calendarKey: calendar.calendarKey)
                let pushedUIDs = try await store.pushedICalUIDs(calendarKey: calendar.calendarKey)
                let all = try await store.appointments(calendarKey: calendar.calendarKey)
                let exceptions = Dictionary(grouping: all.filter { $0.seriesID != nil }, by: { $0.seriesID ?? "" })
                // An echo is linked by the id the push returned, else by calgate's tag on the event (a push whose
                // answer was lost), else by iCalUID.
                func isEcho(_ appointment: Appointment) -> Bool {
                    pushed.contains(appointment.externalID) || (appointment.pushedFrom.map { $0.hasPrefix("lc_") } ?? false)
                        || (appointment.iCalUID.map(pushedUIDs.contains) ?? false)
                }
                for appointment in all where appointment.status != "cancelled" && !isEcho(appointment) {
                    let category = categories[appointment.externalID]
                    if expand, !appointment.recurrence.isEmpty {
                        do {
                            for occurrence in try SeriesExpansion.occurrences(
                                time: appointment.time, recurrence: appointment.recurrence, exceptions: exceptions[appointment.externalID] ?? [],
                                from: from, to: to
                            ) {
                                items.append(Self.occurrence(occurrence, of: appointment, connection: connection, calendar: calendar, category: category))
                            }
                            continue
                        } catch {
                            logger.warning("a series cannot be expanded; listing its master", metadata: ["appointment.id": "\(appointment.externalID)", "error": "\(error)"])
                        }
                    }
                    if Self.overlaps(appointment.time, from: from, to: to) {
                        items.append(Self.representation(appointment, connection: connection, calendar: calendar, category: category))
                    }
                }
            }
        }
        // LeadCenter-created appointments are their owner's; others see them only through LeadCenter itself.
        if viewer == user {
            for appointment in try await store.leadCenterAppointments(userID: user) {
                let push = try await store.pushState(appointmentID: appointment.id)
                if expand, !appointment.recurrence.isEmpty,
                    let occurrences = try? SeriesExpansion.occurrences(time: appointment.time, recurrence: appointment.recurrence, exceptions: [], from: from, to: to)
                {
                    for occurrence in occurrences {
                        guard case .object(var object) = Self.representation(appointment, push: push) else { continue }
                        let stamp = ISO8601DateFormatter().string(from: occurrence.originalStart)
                        object["series_id"] = .string(appointment.id)
                        object["original_start"] = .string(stamp)
                        object["occurrence"] = .bool(true)
                        for key in ["start", "end", "start_date", "end_date", "time_zone", "all_day"] { object[key] = nil }
                        Self.timeFields(occurrence.time, into: &object)
                        items.append(.object(object))
                    }
                } else if Self.overlaps(appointment.time, from: from, to: to) {
                    items.append(Self.representation(appointment, push: push))
                }
            }
        }
        return ConnectionsController.json(.object(["appointments": .array(Self.foldDuplicates(items))]))
    }

    /// Shows a meeting that arrived through two sources once: the first keeps an `also_in` list naming the others.
    static func foldDuplicates(_ items: [JSONValue]) -> [JSONValue] {
        let iso = ISO8601DateFormatter()
        let candidates = items.map { item -> DuplicateDetector.Candidate? in
            guard case .object(let fields) = item, case .string(let start)? = fields["start"], case .string(let end)? = fields["end"],
                let from = iso.date(from: start), let to = iso.date(from: end), case .string(let title)? = fields["title"]
            else { return nil }
            var attendees: Set<String> = []
            if case .array(let list)? = fields["attendees"] { for case .string(let address) in list { attendees.insert(address) } }
            var origin = "leadcenter"
            if case .string(let connection)? = fields["connection_id"] { origin = connection }
            return DuplicateDetector.Candidate(start: from, end: to, title: title, attendees: attendees, origin: origin)
        }
        let duplicates = DuplicateDetector.duplicates(of: candidates)
        var result = items
        var alsoIn: [Int: [JSONValue]] = [:]
        for (index, original) in duplicates.enumerated() {
            guard let original, case .object(let fields) = items[index] else { continue }
            alsoIn[original, default: []].append(
                .object([
                    "id": fields["id"] ?? .null, "source": fields["source"] ?? .null,
                    "connection_id": fields["connection_id"] ?? .null, "calendar_id": fields["calendar_id"] ?? .null,
                ]))
        }
        for (index, others) in alsoIn {
            if case .object(var fields) = result[index] {
                fields["also_in"] = .array(others)
                result[index] = .object(fields)
            }
        }
        return result.enumerated().filter { duplicates[$0.offset] == nil }.map(\.element)
    }

    /// `GET /api/v1/availability?user=…&from=…&to=…`: merged busy intervals, nothing else.
    func availability(_ call: RouteCall) async throws -> Response {
        let query = call.request.uri.queryParameters
        guard let user = query.get("user").map({ String($0) }), !user.isEmpty else { throw GatewayHTTPError.badRequest("user is required") }
        guard query.get("from") != nil, query.get("to") != nil else { throw GatewayHTTPError.badRequest("from and to are required") }
        let (from, to) = try Self.window(query)
        guard to.timeIntervalSince(from) <= 366 * 86_400 else { throw GatewayHTTPError.badRequest("the range may span at most 366 days") }
        var intervals: [(Date, Date)] = []
        for connection in try await store.connections(userID: user) where connection.state.syncs {
            for calendar in try await store.calendars(connectionID: connection.id) where calendar.selected {
                let all = try await store.appointments(calendarKey: calendar.calendarKey)
                let exceptions = Dictionary(grouping: all.filter { $0.seriesID != nil }, by: { $0.seriesID ?? "" })
                for appointment in all where appointment.status != "cancelled" {
                    intervals += Self.busy(appointment.time, recurrence: appointment.recurrence, exceptions: exceptions[appointment.externalID] ?? [], from: from, to: to)
                }
            }
        }
        for appointment in try await store.leadCenterAppointments(userID: user) {
            intervals += Self.busy(appointment.time, recurrence: appointment.recurrence, exceptions: [], from: from, to: to)
        }
        let iso = ISO8601DateFormatter()
        let busy = BusyIntervals.merge(intervals, clippedTo: from...to).map { interval -> JSONValue in
            .object(["start": .string(iso.string(from: interval.start)), "end": .string(iso.string(from: interval.end))])
        }
        return ConnectionsController.json(
            .object([
                "user": .string(user), "from": .string(iso.string(from: from)), "to": .string(iso.string(from: to)), "busy": .array(busy),
            ]))
    }

    /// The timed busy spans of an appointment (a series expanded) in the window; all-day events do not block time.
    static func busy(_ time: AppointmentTime, recurrence: [String], exceptions: [Appointment], from: Date, to: Date) -> [(Date, Date)] {
        let times: [AppointmentTime]
        if recurrence.isEmpty {
            times = [time]
        } else if let occurrences = try? SeriesExpansion.occurrences(time: time, recurrence: recurrence, exceptions: exceptions, from: from, to: to) {
            times = occurrences.map(\.time)
        } else {
            times = [time]
        }
        return times.compactMap { time in
            guard case .timed(let start, let end, _) = time, start < to, end > from else { return nil }
            return (start, end)
        }
    }

    static func occurrence(_ occurrence: SeriesExpansion.Occurrence, of master: Appointment, connection: Connection, calendar: ConnectionCalendar, category: String?) -> JSONValue {
        guard case .object(var object) = representation(master, connection: connection, calendar: calendar, category: category) else { return .null }
        let stamp = ISO8601DateFormatter().string(from: occurrence.originalStart)
        object["id"] = .string(master.externalID + "_" + stamp.replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: ""))
        object["series_id"] = .string(master.externalID)
        object["original_start"] = .string(stamp)
        object["occurrence"] = .bool(true)
        object["recurrence"] = .array([])
        for key in ["start", "end", "start_date", "end_date", "time_zone", "all_day"] { object[key] = nil }
        timeFields(occurrence.time, into: &object)
        return .object(object)
    }

    // MARK: Imported appointments: read-only except category

    /// The connection, calendar and appointment named by the path.
    func imported(_ call: RouteCall) async throws -> (Connection, ConnectionCalendar, Appointment) {
        func parameter(_ name: String) -> String? { call.parameters[name].map { $0.removingPercentEncoding ?? $0 } }
        guard let id = parameter("id"), let connection = try await store.connection(id: id) else {
            throw GatewayHTTPError.notFound("no connection with this id")
        }
        guard let calendarID = parameter("calendar"),
            let calendar = try await store.calendars(connectionID: connection.id).first(where: { $0.calendarID == calendarID })
        else { throw GatewayHTTPError.notFound("the connection has no calendar with this id") }
        guard let externalID = parameter("appointment"),
            let appointment = try await store.appointments(calendarKey: calendar.calendarKey).first(where: { $0.externalID == externalID })
        else { throw GatewayHTTPError.notFound("no imported appointment with this id in that calendar") }
        return (connection, calendar, appointment)
    }

    /// Only `category` may change on an imported appointment; anything else is a 409 naming where to edit it.
    func updateImported(_ call: RouteCall) async throws -> Response {
        let (connection, calendar, appointment) = try await imported(call)
        let document: JSONValue
        do { document = try JSONValue.parse(Data(buffer: call.body)) } catch { throw GatewayHTTPError.badRequest("body \(error.message)") }
        guard case .object(let fields) = document else { throw GatewayHTTPError.badRequest("body must be a JSON object") }
        if let other = fields.keys.sorted().first(where: { $0 != "category" }) {
            throw Self.readOnly(connection.provider, field: other)
        }
        guard let value = fields["category"] else { throw GatewayHTTPError.badRequest("category is required (a string, or null to clear it)") }
        switch value {
        case .null:
            try await store.setCategory(calendarKey: calendar.calendarKey, externalID: appointment.externalID, category: nil)
        case .string(let category) where !category.isEmpty && category.utf8.count <= 128:
            try await store.setCategory(calendarKey: calendar.calendarKey, externalID: appointment.externalID, category: category)
        default:
            throw GatewayHTTPError.badRequest("category must be a string of 1 to 128 bytes, or null")
        }
        let category = try await store.categories(calendarKey: calendar.calendarKey)[appointment.externalID]
        return ConnectionsController.json(Self.representation(appointment, connection: connection, calendar: calendar, category: category))
    }

    static func readOnly(_ provider: Provider?, field: String? = nil) -> GatewayHTTPError {
        let source = provider?.calendarName ?? "the calendar it came from"
        let what = field.map { "\"\($0)\" cannot be changed" } ?? "it cannot be changed or deleted"
        return GatewayHTTPError.conflict("this appointment is imported from \(source): \(what) here (only its category can); edit it in \(source)")
    }

    // MARK: LeadCenter-created appointments

    func create(_ call: RouteCall) async throws -> Response {
        let object = try ConnectionsController.strictObject(
            call.body,
            allowed: [
                "user_id", "account_id", "title", "start", "end", "start_date", "end_date", "time_zone", "category", "recurrence",
            ])
        let user = try ConnectionsController.required(object, "user_id", max: 256)
        let now = clock.now()
        var appointment = LeadCenterAppointment(
            id: "lc_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""), userID: user,
            accountID: try ConnectionsController.string(object, "account_id") ?? user, title: "",
            time: .timed(start: now, end: now, timeZone: nil), createdAt: now, updatedAt: now
        )
        try Self.apply(object, to: &appointment, creating: true)
        let (push, state) = try await plannedPush(for: appointment, creating: true)
        try await store.saveLeadCenterAppointment(appointment, push: push, state: state)
        var response = ConnectionsController.json(Self.representation(appointment, push: state))
        response.status = .created
        return response
    }

    func update(_ call: RouteCall) async throws -> Response {
        guard let id = call.parameters["id"] else { throw GatewayHTTPError.notFound("no appointment with this id") }
        guard id.hasPrefix("lc_") else { throw Self.readOnly(nil) }
        guard var appointment = try await store.leadCenterAppointment(id: id) else { throw GatewayHTTPError.notFound("no appointment with this id") }
        let object = try ConnectionsController.strictObject(
            call.body,
            allowed: [
                "title", "start", "end", "start_date", "end_date", "time_zone", "category", "recurrence",
            ])
        try Self.apply(object, to: &appointment, creating: false)
        appointment.updatedAt = clock.now()
        let (push, state) = try await plannedPush(for: appointment, creating: false)
        try await store.saveLeadCenterAppointment(appointment, push: push, state: state)
        return ConnectionsController.json(Self.representation(appointment, push: state))
    }

    /// Applies the fields of a create or update body, validating each.
    static func apply(_ object: StrictJSONObject, to appointment: inout LeadCenterAppointment, creating: Bool) throws {
        if let title = try ConnectionsController.string(object, "title") {
            guard !title.isEmpty, title.utf8.count <= 1024 else { throw GatewayHTTPError.badRequest("title must be 1 to 1024 bytes") }
            appointment.title = title
        } else if creating {
            throw GatewayHTTPError.badRequest("title is required")
        }
        if object.contains("category") {
            switch object.value("category") {
            case .null?: appointment.category = nil
            case .string(let category)? where !category.isEmpty && category.utf8.count <= 128: appointment.category = category
            default: throw GatewayHTTPError.badRequest("category must be a string of 1 to 128 bytes, or null")
            }
        }
        if let lines = try? object.array("recurrence") {
            var rules: [String] = []
            for (index, line) in lines.enumerated() {
                guard case .string(let text) = line, text.hasPrefix("RRULE:") || text.hasPrefix("EXDATE") || text.hasPrefix("RDATE"),
                    text.utf8.count <= 1024, !text.contains("\n")
                else { throw GatewayHTTPError.badRequest("recurrence[\(index)] must be an RRULE, EXDATE or RDATE line") }
                rules.append(text)
            }
            appointment.recurrence = rules
        } else if object.contains("recurrence") {
            throw GatewayHTTPError.badRequest("recurrence must be an array of RRULE, EXDATE or RDATE lines")
        }
        let timed = object.contains("start") || object.contains("end")
        let allDay = object.contains("start_date") || object.contains("end_date")
        guard !(timed && allDay) else { throw GatewayHTTPError.badRequest("give start/end (timed) or start_date/end_date (all-day), not both") }
        if timed {
            guard let startText = try ConnectionsController.string(object, "start"), let start = RFC3339.parse(startText),
                let endText = try ConnectionsController.string(object, "end"), let end = RFC3339.parse(endText)
            else { throw GatewayHTTPError.badRequest("start and end must both be RFC 3339 times such as 2026-12-01T10:00:00Z") }
            guard end > start, end.timeIntervalSince(start) <= 14 * 86_400 else {
                throw GatewayHTTPError.badRequest("end must be after start, and at most 14 days later")
            }
            let zone = try ConnectionsController.string(object, "time_zone")
            if let zone, TimeZone(identifier: zone) == nil { throw GatewayHTTPError.badRequest("time_zone \"\(zone)\" is not an IANA time zone") }
            appointment.time = .timed(start: start, end: end, timeZone: zone)
        } else if allDay {
            guard let first = try ConnectionsController.string(object, "start_date"), let last = try ConnectionsController.string(object, "end_date"),
                let firstDay = parseDate(first), let lastDay = parseDate(last), lastDay > firstDay
            else { throw GatewayHTTPError.badRequest("start_date and end_date must be yyyy-mm-dd dates, end_date exclusive and after start_date") }
            appointment.time = .allDay(startDate: first, endDate: last)
        } else if creating {
            throw GatewayHTTPError.badRequest("give start and end (timed) or start_date and end_date (all-day)")
        }
    }

    func ownerOf(_ id: String) async throws -> String {
        try await store.leadCenterAppointment(id: id)?.userID ?? ""
    }

    // MARK: "Add to calendar"

    func pushTargetRepresentation(_ user: String) async throws -> JSONValue {
        guard let key = try await store.pushTarget(userID: user), let slash = key.firstIndex(of: "/") else {
            return .object(["user_id": .string(user), "connection_id": .null, "calendar_id": .null])
        }
        return .object([
            "user_id": .string(user), "connection_id": .string(String(key[..<slash])),
            "calendar_id": .string(String(key[key.index(after: slash)...])),
        ])
    }

    /// `PUT /api/v1/users/{user}/push-target` with `{"connection_id", "calendar_id"}`, or `{"connection_id": null}` to
    /// push nowhere. At most one target per user, by construction.
    func setPushTarget(_ call: RouteCall) async throws -> Response {
        guard let user = call.parameters["user"], !user.isEmpty, user.utf8.count <= 256 else { throw GatewayHTTPError.badRequest("user is required") }
        let object = try ConnectionsController.strictObject(call.body, allowed: ["connection_id", "calendar_id"])
        if case .null? = object.value("connection_id") {
            try await store.setPushTarget(userID: user, calendarKey: nil)
            return ConnectionsController.json(try await pushTargetRepresentation(user))
        }
        let connectionID = try ConnectionsController.required(object, "connection_id", max: 256)
        let calendarID = try ConnectionsController.required(object, "calendar_id", max: 1024)
        guard let connection = try await store.connection(id: connectionID), connection.userID == user else {
            throw GatewayHTTPError.notFound("user \(user) has no connection with this id")
        }
        guard pushTargets.contains(connection.provider) else {
            let names = pushTargets.map(\.displayName).joined(separator: " and ")
            throw GatewayHTTPError.conflict("only \(names) calendars can be the \"Add to calendar\" target")
        }
        guard connection.state.syncs else {
            throw GatewayHTTPError.conflict("the connection is \(connection.state.rawValue); reconnect it before choosing it as the target")
        }
        guard try await store.calendars(connectionID: connectionID).contains(where: { $0.calendarID == calendarID }) else {
            throw GatewayHTTPError.badRequest("calendar \"\(calendarID)\" is not one of this connection's calendars")
        }
        try await store.setPushTarget(userID: user, calendarKey: "\(connectionID)/\(calendarID)")
        return ConnectionsController.json(try await pushTargetRepresentation(user))
    }

    /// The push to enqueue for a created or changed appointment, and the state it is in meanwhile.
    func plannedPush(for appointment: LeadCenterAppointment, creating: Bool) async throws -> ((action: PushAction, calendarKey: String)?, PushState) {
        let state = creating ? nil : try await store.pushState(appointmentID: appointment.id)
        if let pushed = state?.calendarKey {
            return ((.update, pushed), PushState(status: "pending", calendarKey: pushed, externalID: state?.externalID))
        }
        if let target = try await store.pushTarget(userID: appointment.userID) {
            return ((creating || state?.status != "pending" ? .create : .update, target), PushState(status: "pending"))
        }
        return (nil, PushState(status: "no_target"))
    }

    // MARK: Shapes

    static func window(_ query: Parameters) throws -> (Date, Date) {
        func instant(_ name: String) throws -> Date? {
            guard let text = query.get(name) else { return nil }
            guard let date = RFC3339.parse(String(text)) else {
                throw GatewayHTTPError.badRequest("\(name) must be an RFC 3339 time such as 2026-12-01T00:00:00Z")
            }
            return date
        }
        let from = try instant("from") ?? .distantPast
        let to = try instant("to") ?? .distantFuture
        guard from <= to else { throw GatewayHTTPError.badRequest("from must not be after to") }
        return (from, to)
    }


    static func parseDate(_ text: String) -> Date? {
        guard text.count == 10 else { return nil }
        let formatter = DateFormatter.fixed("yyyy-MM-dd")
        guard let date = formatter.date(from: text), formatter.string(from: date) == text else { return nil }
        return date
    }

    static func overlaps(_ time: AppointmentTime, from: Date, to: Date) -> Bool {
        switch time {
        case .timed(let start, let end, _):
            return start < to && max(end, start.addingTimeInterval(1)) > from
        case .allDay(let startDate, let endDate):
            guard let start = parseDate(startDate), let end = parseDate(endDate) else { return true }
            return start < to && max(end, start.addingTimeInterval(86_400)) > from
        }
    }

    static func timeFields(_ time: AppointmentTime, into object: inout [String: JSONValue]) {
        let iso = ISO8601DateFormatter()
        switch time {
        case .timed(let start, let end, let zone):
            object["all_day"] = .bool(false)
            object["start"] = .string(iso.string(from: start))
            object["end"] = .string(iso.string(from: end))
            object["time_zone"] = zone.map(JSONValue.string) ?? .null
        case .allDay(let startDate, let endDate):
            object["all_day"] = .bool(true)
            object["start_date"] = .string(startDate)
            object["end_date"] = .string(endDate)
        }
    }

    static func representation(_ appointment: Appointment, connection: Connection, calendar: ConnectionCalendar, category: String?) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(appointment.externalID), "source": .string(appointment.source.rawValue),
            "connection_id": .string(connection.id), "calendar_id": .string(calendar.calendarID),
            "title": .string(appointment.title), "status": .string(appointment.status),
            "series_id": appointment.seriesID.map(JSONValue.string) ?? .null,
            "original_start": appointment.originalStart.map(JSONValue.string) ?? .null,
            "recurrence": .array(appointment.recurrence.map(JSONValue.string)),
            "category": category.map(JSONValue.string) ?? .null,
            "read_only": .bool(true), "editable_fields": .array([.string("category")]),
            "owner_user_id": .string(connection.userID), "visibility": .string(connection.visibility.rawValue),
            "attendees": .array(appointment.attendees.map(JSONValue.string)),
        ]
        timeFields(appointment.time, into: &object)
        return .object(object)
    }

    static func representation(_ appointment: LeadCenterAppointment, push: PushState?) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(appointment.id), "source": .string("leadcenter"), "connection_id": .null, "calendar_id": .null,
            "title": .string(appointment.title), "status": .string("confirmed"), "series_id": .null, "original_start": .null,
            "recurrence": .array(appointment.recurrence.map(JSONValue.string)),
            "category": appointment.category.map(JSONValue.string) ?? .null, "read_only": .bool(false),
            "editable_fields": .array(["title", "start", "end", "start_date", "end_date", "time_zone", "category", "recurrence"].map(JSONValue.string)),
            "owner_user_id": .string(appointment.userID), "visibility": .string("only_me"),
            // no_target: nothing selected, nothing pushed; pending; pushed (with where); failed (with why).
            "push_status": .string(push?.status ?? "no_target"),
            "pushed_to": push?.calendarKey.map { key -> JSONValue in
                let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
                return .object(["connection_id": .string(parts.first ?? ""), "calendar_id": .string(parts.count > 1 ? parts[1] : "")])
            } ?? .null,
            "push_error": push?.error.map(JSONValue.string) ?? .null,
        ]
        timeFields(appointment.time, into: &object)
        return .object(object)
    }
}

/// Busy time for public booking: intervals merged, nothing else.
public enum BusyIntervals {
    /// Sorted, merged (touching or overlapping joined) and clipped to `window`.
    public static func merge(_ intervals: [(Date, Date)], clippedTo window: ClosedRange<Date>) -> [(start: Date, end: Date)] {
        var merged: [(start: Date, end: Date)] = []
        for (start, end) in intervals.map({ (max($0.0, window.lowerBound), min($0.1, window.upperBound)) }).filter({ $0.0 < $0.1 }).sorted(by: { $0.0 < $1.0 }) {
            if let last = merged.last, start <= last.end {
                merged[merged.count - 1].end = max(last.end, end)
            } else {
                merged.append((start, end))
            }
        }
        return merged
    }
}
