import Foundation
import GatewayCore

/// One item of a Graph change- or lifecycle-notification collection (PROVIDERS.md §3.4, §3.6).
public struct GraphNotification: Sendable, Hashable {
    /// The subscription it belongs to.
    public var subscriptionID: String
    /// The secret calgate set; must match the stored one.
    public var clientState: String?
    /// `created`, `updated` or `deleted` (change notifications).
    public var changeType: String?
    /// `reauthorizationRequired`, `subscriptionRemoved` or `missed` (lifecycle notifications).
    public var lifecycleEvent: String?
    /// Resource path, e.g. `Users/{id}/Events/{id}`.
    public var resource: String?
    /// The changed item's id.
    public var resourceID: String?
    /// The changed item's etag.
    public var etag: String?
    /// The tenant.
    public var tenantID: String?
    /// Graph's notification id, when it sends one.
    public var notificationID: String?
}

/// Strictly decodes a notification collection: the body must be `{"value": [...]}` with well-typed items.
public enum GraphNotificationDecoder {
    static let changeTypes: Set<String> = ["created", "updated", "deleted"]
    static let lifecycleEvents: Set<String> = ["reauthorizationRequired", "subscriptionRemoved", "missed"]
    /// The most items calgate accepts in one POST (Graph batches far fewer).
    public static let maximumItems = 1_000

    /// Decodes `body`; `lifecycle` requires `lifecycleEvent` on every item, otherwise `changeType`.
    public static func decode(_ body: [UInt8], lifecycle: Bool) throws(GraphNotificationError) -> [GraphNotification] {
        let document: JSONValue
        do { document = try JSONValue.parse(Data(body)) } catch { throw GraphNotificationError("body \(error.message)") }
        guard case .object(let top) = document, case .array(let items)? = top["value"] else {
            throw GraphNotificationError("body must be an object with a \"value\" array")
        }
        guard !items.isEmpty else { throw GraphNotificationError("\"value\" is empty") }
        guard items.count <= maximumItems else { throw GraphNotificationError("\"value\" has more than \(maximumItems) items") }
        var notifications: [GraphNotification] = []
        for (index, item) in items.enumerated() {
            guard case .object(let fields) = item else { throw GraphNotificationError("value[\(index)] must be an object") }
            func string(_ key: String, max: Int = 512) throws(GraphNotificationError) -> String? {
                switch fields[key] {
                case nil, .null?: return nil
                case .string(let text)?:
                    guard text.utf8.count <= max else { throw GraphNotificationError("value[\(index)].\(key) is too long") }
                    return text
                case let other?: throw GraphNotificationError("value[\(index)].\(key) must be a string, found \(other.kindName)")
                }
            }
            guard let subscription = try string("subscriptionId", max: 128), !subscription.isEmpty else {
                throw GraphNotificationError("value[\(index)].subscriptionId is required")
            }
            var notification = GraphNotification(
                subscriptionID: subscription, clientState: try string("clientState", max: 255),
                changeType: try string("changeType", max: 32), lifecycleEvent: try string("lifecycleEvent", max: 64),
                resource: try string("resource", max: 2048), resourceID: nil, etag: nil,
                tenantID: try string("tenantId", max: 64), notificationID: try string("id", max: 256)
            )
            if case .object(let data)? = fields["resourceData"] {
                if case .string(let id)? = data["id"], id.utf8.count <= 512 { notification.resourceID = id }
                if case .string(let tag)? = data["@odata.etag"], tag.utf8.count <= 256 { notification.etag = tag }
            }
            // Each kind keeps only its own discriminator: a change item's `lifecycleEvent` (a lifecycle-only field)
            // would otherwise become the inbox kind, turning a change POST into a recovery action and turning its
            // deduplication off (found by fuzzing).
            if lifecycle {
                guard let event = notification.lifecycleEvent, lifecycleEvents.contains(event) else {
                    throw GraphNotificationError("value[\(index)].lifecycleEvent must be one of \(lifecycleEvents.sorted().joined(separator: ", "))")
                }
                notification.changeType = nil
            } else {
                guard let change = notification.changeType, changeTypes.contains(change) else {
                    throw GraphNotificationError("value[\(index)].changeType must be one of created, deleted, updated")
                }
                notification.lifecycleEvent = nil
            }
            notifications.append(notification)
        }
        return notifications
    }

    /// The inbox entry for a verified notification; retries of the same change notification share the dedupe key.
    /// Lifecycle notifications are never deduplicated: a second `reauthorizationRequired` a day later looks the same
    /// as a retry, and acting twice is harmless.
    public static func inboxEntry(for notification: GraphNotification, receivedAt: Date) -> InboxEntry {
        let kind = notification.lifecycleEvent ?? notification.changeType ?? "unknown"
        let identity =
            notification.notificationID
            ?? [notification.changeType ?? notification.lifecycleEvent ?? "", notification.resourceID ?? "", notification.etag ?? ""]
            .joined(separator: ":")
        let dedupeKey = notification.lifecycleEvent == nil ? "graph:\(notification.subscriptionID):\(identity)" : nil
        var headers: [String: String] = [:]
        if let resource = notification.resource { headers["resource"] = resource }
        if let id = notification.resourceID { headers["resource_id"] = id }
        if let tenant = notification.tenantID { headers["tenant_id"] = tenant }
        return InboxEntry(
            provider: .microsoft, channelID: notification.subscriptionID,
            dedupeKey: dedupeKey, kind: kind, receivedAt: receivedAt, headers: headers
        )
    }

    /// The `validationToken` query value, form-decoded (`+` is a space, PROVIDERS.md §3.3); nil when absent.
    public static func validationToken(inQuery query: String) -> String? {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == "validationToken" else { continue }
            let spaced = parts[1].replacingOccurrences(of: "+", with: " ")
            return spaced.removingPercentEncoding ?? spaced
        }
        return nil
    }
}

/// A notification body calgate cannot use.
public struct GraphNotificationError: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public let description: String
    init(_ description: String) { self.description = description }
}
