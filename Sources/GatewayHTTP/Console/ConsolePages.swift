import Foundation
import GatewayCore

/// Builds the Mustache contexts of the console pages: plain strings, numbers and flags, with every provider string
/// passed as is (the templates escape it) after `ConsoleText.redacted` removes anything shaped like a credential.
enum ConsolePages {
    static func providerName(_ provider: Provider) -> String {
        provider.displayName
    }

    /// `2026-11-25 14:03:09 UTC`.
    static func timestamp(_ date: Date) -> String {
        DateFormatter.fixed("yyyy-MM-dd HH:mm:ss 'UTC'").string(from: date)
    }

    /// `45 s`, `12 min`, `3 h 20 min`, `2 d 4 h`.
    static func duration(_ seconds: TimeInterval) -> String {
        let total = Int(max(0, seconds).rounded())
        if total < 60 { return "\(total) s" }
        if total < 3600 { return "\(total / 60) min" }
        if total < 86_400 { return total % 3600 / 60 == 0 ? "\(total / 3600) h" : "\(total / 3600) h \(total % 3600 / 60) min" }
        return total % 86_400 / 3600 == 0 ? "\(total / 86_400) d" : "\(total / 86_400) d \(total % 86_400 / 3600) h"
    }

    static func ago(_ date: Date, now: Date) -> String {
        date > now ? "in \(duration(date.timeIntervalSince(now)))" : "\(duration(now.timeIntervalSince(date))) ago"
    }

    static func common(title: String, session: ConsoleSessions.Session?, version: String, now: Date, autoRefresh: Bool) -> [String: Any] {
        [
            "title": title, "loggedIn": session != nil, "csrf": session?.csrfToken ?? "", "version": version,
            "generatedAt": timestamp(now), "autoRefresh": autoRefresh,
        ]
    }

    static func syncSummary(_ record: GatewayActivity.SyncRecord?, now: Date) -> String {
        guard let record else { return "none since start" }
        let kind = record.fullSync ? "full sync" : "delta sync"
        let changes = record.changes == 1 ? "1 change" : "\(record.changes) changes"
        return record.succeeded ? "\(kind) ok, \(changes), \(ago(record.finishedAt, now: now))" : "failed \(ago(record.finishedAt, now: now))"
    }

    // MARK: Overview

    static func overview(_ overview: ConsoleOverview) -> [String: Any] {
        let now = overview.generatedAt
        let rates = overview.lastMinute
        var providers: [[String: Any]] = []
        for provider in overview.providers {
            let degraded = overview.count(provider, .degraded)
            let broken = overview.count(provider, .needsReconnect)
            let failed = rates.syncsFailed[provider] ?? 0
            providers.append([
                "name": providerName(provider), "active": overview.count(provider, .active), "degraded": degraded,
                "degradedClass": degraded > 0 ? "warn" : "", "needsReconnect": broken, "needsReconnectClass": broken > 0 ? "bad" : "",
                "disconnected": overview.count(provider, .disconnected), "accepted": rates.accepted[provider] ?? 0,
                "syncs": (rates.syncsSucceeded[provider] ?? 0) + failed, "syncsFailed": failed, "syncsFailedClass": failed > 0 ? "bad" : "",
                "missed": provider == .redtail ? "—" : String(overview.missedByPush[provider] ?? 0),
            ])
        }
        let rejections: [[String: Any]] = rates.rejected.sorted { $0.key < $1.key }.map { key, count in
            let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
            let provider = Provider(rawValue: parts.first ?? "").map(providerName) ?? (parts.first ?? "")
            return ["provider": provider, "reason": parts.count > 1 ? parts[1] : key, "count": count]
        }
        let shownLimit = 500
        let rows: [[String: Any]] = overview.connections.prefix(shownLimit).map { summary in
            let connection = summary.connection
            let selected = summary.calendars.filter(\.selected).count
            return [
                "id": connection.id, "user": connection.userID, "provider": providerName(connection.provider),
                "state": connection.state.rawValue, "stateClass": connection.state.rawValue,
                "calendars": "\(selected) of \(summary.calendars.count) synced",
                "lastSync": syncSummary(summary.lastSync, now: now), "reason": ConsoleText.redacted(connection.stateReason ?? ""),
            ]
        }
        let accepted = rates.accepted.values.reduce(0, +)
        let failed = rates.syncsFailed.values.reduce(0, +)
        var context: [String: Any] = [
            "status": overview.status.rawValue, "statusClass": overview.status.rawValue,
            "backlog": overview.backlog.count,
            "backlogAge": overview.backlog.oldestReceivedAt.map { duration(now.timeIntervalSince($0)) } ?? "—",
            "acceptedTotal": accepted, "rejectedTotal": rates.rejected.values.reduce(0, +),
            "syncsTotal": rates.syncsSucceeded.values.reduce(0, +) + failed, "syncsFailedTotal": failed,
            "runningSyncs": overview.runningSyncs,
            "renewalsDue": overview.renewalsDueIn24Hours, "lapsed": overview.lapsedCount, "lapsedClass": overview.lapsedCount > 0 ? "bad" : "",
            "missedTotal": overview.missedByPush.values.reduce(0, +),
            "providers": providers, "rejections": rejections, "hasRejections": !rejections.isEmpty,
            "connections": rows, "hasConnections": !rows.isEmpty,
            "connectionsTruncated": overview.connections.count > shownLimit, "connectionsShown": shownLimit,
            "connectionsTotal": overview.connections.count,
            "partitionCount": Partitions.count,
            "partitionOwners": overview.partitionOwners.map { owner in
                [
                    "instance": owner.owner, "partitions": owner.partitions, "live": owner.live ? "live" : "heartbeat lapsed",
                    "liveClass": owner.live ? "" : "bad", "self": owner.owner == overview.instance ? " (this instance)" : "",
                ] as [String: Any]
            },
        ]
        // A missing key, not a nil value, is what Mustache's inverted section tests.
        if let timeline = timeline(overview.subscriptions, now: now) { context["timeline"] = timeline }
        return context
    }

    // MARK: Timeline

    /// The inline SVG's numbers: one row per subscription, a bar from now to expiry on a shared scale, the planned
    /// renewal marked; lapsed ones drawn red at the left edge. Nil when there is nothing to draw.
    static func timeline(_ subscriptions: [ConsoleOverview.Subscription], now: Date, limit: Int = 200) -> [String: Any]? {
        guard !subscriptions.isEmpty else { return nil }
        let shown = Array(subscriptions.prefix(limit))
        let width = 1000.0, labelWidth = 330.0, rightMargin = 140.0, rowHeight = 26.0, top = 28.0
        let plotLeft = labelWidth, plotWidth = width - labelWidth - rightMargin
        let latest = shown.map { $0.expiresAt.timeIntervalSince(now) }.max() ?? 0
        // The scale ends on a whole day (at least one) past the latest expiry.
        let horizon = max(86_400, (latest / 86_400).rounded(.up) * 86_400)
        func x(_ date: Date) -> Double { plotLeft + min(1, max(0, date.timeIntervalSince(now) / horizon)) * plotWidth }
        let bottom = top + Double(shown.count) * rowHeight
        let step: TimeInterval = horizon <= 86_400 ? 6 * 3600 : horizon <= 4 * 86_400 ? 12 * 3600 : 86_400
        var ticks: [[String: Any]] = []
        var offset: TimeInterval = 0
        while offset <= horizon + 1 {
            let label = offset == 0 ? "now" : offset.truncatingRemainder(dividingBy: 86_400) == 0 ? "+\(Int(offset / 86_400)) d" : "+\(Int(offset / 3600)) h"
            ticks.append(["x": format(plotLeft + offset / horizon * plotWidth), "label": label])
            offset += step
        }
        var rows: [[String: Any]] = []
        for (index, subscription) in shown.enumerated() {
            let y = top + Double(index) * rowHeight
            let end = subscription.lapsed ? plotLeft + 6 : max(plotLeft + 2, x(subscription.expiresAt))
            let kind = subscription.provider == .google ? "channel" : "subscription"
            let label = "\(providerName(subscription.provider)) · \(subscription.calendarName)" + (subscription.userID.isEmpty ? "" : " (\(subscription.userID))")
            let expiry =
                subscription.lapsed
                ? "lapsed \(duration(now.timeIntervalSince(subscription.expiresAt))) ago"
                : "expires in \(duration(subscription.expiresAt.timeIntervalSince(now)))"
            rows.append([
                "provider": subscription.provider.rawValue, "lapsed": subscription.lapsed,
                "barClass": subscription.lapsed ? "lapsed" : subscription.provider.rawValue,
                "label": truncated(label, 48), "textY": format(y + 13), "barX": format(plotLeft), "barY": format(y + 1),
                "barWidth": format(end - plotLeft),
                "hasRenewal": !subscription.lapsed, "renewX": format(x(subscription.renewAt)), "markTop": format(y - 2), "markBottom": format(y + 20),
                "expiryX": format(end + 6), "expiryText": expiry,
                "tooltip": "\(providerName(subscription.provider)) \(kind) \(subscription.id) for \(subscription.calendarName): expires \(timestamp(subscription.expiresAt)), renewal planned \(timestamp(subscription.renewAt))",
            ])
        }
        return [
            "width": format(width), "height": format(bottom + 8), "count": subscriptions.count - subscriptions.filter(\.lapsed).count,
            "lapsedCount": subscriptions.filter(\.lapsed).count, "ticks": ticks, "rows": rows, "bottom": format(bottom),
            "plotLeft": format(plotLeft), "hidden": subscriptions.count - shown.count, "hasHidden": subscriptions.count > shown.count,
        ]
    }

    static func format(_ value: Double) -> String { String(format: "%.1f", value) }

    static func truncated(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }

    // MARK: Connection

    /// What the connection page shows.
    struct ConnectionData {
        var connection: Connection
        var calendars: [ConnectionCalendar]
        var cursorUpdatedAt: [String: Date]
        var progress: [SyncProgress]
        var notifications: [GatewayActivity.NotificationRecord]
        var lastSyncs: [String: GatewayActivity.SyncRecord]
        var subscriptions: [ConsoleOverview.Subscription]
    }

    static func connectionSummary(_ connection: Connection, now: Date) -> [String: Any] {
        [
            "id": connection.id, "user": connection.userID, "provider": providerName(connection.provider),
            "state": connection.state.rawValue, "stateClass": connection.state.rawValue, "account": connection.accountID,
            "visibility": connection.visibility.rawValue.replacingOccurrences(of: "_", with: " "),
            "created": timestamp(connection.createdAt), "hasNextRetry": connection.nextRetryAt != nil,
            "nextRetry": connection.nextRetryAt.map { ago($0, now: now) } ?? "",
        ]
    }

    static func connection(_ data: ConnectionData, now: Date) -> [String: Any] {
        let connection = data.connection
        let names = Dictionary(data.calendars.map { ($0.calendarKey, $0.name) }, uniquingKeysWith: { first, _ in first })
        let progressByKey = Dictionary(data.progress.map { ($0.calendarKey, $0) }, uniquingKeysWith: { first, _ in first })
        let calendars: [[String: Any]] = data.calendars.map { calendar in
            let key = calendar.calendarKey
            let last = data.lastSyncs[key]
            var row: [String: Any] = [
                "name": calendar.name, "id": calendar.calendarID, "selected": calendar.selected,
                "cursorAge": data.cursorUpdatedAt[key].map { duration(now.timeIntervalSince($0)) } ?? "no cursor",
                "lastSync": syncSummary(last, now: now), "lastSyncClass": last.map { $0.succeeded ? "good" : "bad" } ?? "",
                "hasLastSyncMessage": last?.succeeded == false && last?.message != nil,
                "lastSyncMessage": ConsoleText.redacted(last?.message ?? ""),
            ]
            if let progress = progressByKey[key] {
                row["progress"] =
                    [
                        "phase": progress.phase.rawValue, "pages": progress.pagesFetched, "fetched": progress.appointmentsFetched,
                        "applied": progress.appointmentsApplied, "started": ago(progress.startedAt, now: now),
                    ] as [String: Any]
            }
            return row
        }
        let failures = data.lastSyncs.values.filter { !$0.succeeded }.sorted { $0.finishedAt > $1.finishedAt }
        let lastError = connection.stateReason ?? failures.first?.message ?? "none"
        let notifications: [[String: Any]] = data.notifications.map { record in
            [
                "received": "\(timestamp(record.receivedAt)) (\(ago(record.receivedAt, now: now)))",
                "calendar": names[record.calendarKey] ?? ConnectionCalendar.parts(of: record.calendarKey)?.calendarID ?? record.calendarKey,
                "kind": record.kind,
            ]
        }
        var context: [String: Any] = [
            "connection": connectionSummary(connection, now: now), "calendars": calendars, "lastError": ConsoleText.redacted(lastError),
            "notifications": notifications, "hasNotifications": !notifications.isEmpty,
            "canSync": connection.state.syncs, "canRenew": connection.provider != .redtail,
            "canDisconnect": connection.state != .disconnected,
        ]
        if let timeline = timeline(data.subscriptions, now: now) { context["timeline"] = timeline }
        return context
    }
}
