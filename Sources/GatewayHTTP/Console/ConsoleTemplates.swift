import Mustache

/// The console's Mustache templates and stylesheet, compiled into the binary (no front-end build step, no files to
/// deploy). Every value goes through `{{…}}`, which HTML-escapes `& < > " '`; no template uses `{{{…}}}` or `{{&…}}`,
/// and a test keeps it that way, so no provider string (calendar names, event titles, error messages) can reach the
/// page unescaped.
enum ConsoleTemplates {
    /// Every template by name; `header` and `footer` are partials the pages include.
    static let sources: [String: String] = [
        "header": header, "footer": footer, "login": login, "overview": overview, "timeline": timeline,
        "connection": connection, "confirm_disconnect": confirmDisconnect,
    ]

    /// The compiled library (templates are constants, so a parse error is a programming error caught by the tests).
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, source) in sources {
            do { try library.register(source, named: name) } catch { preconditionFailure("console template \(name) does not parse: \(error)") }
        }
        return library
    }()

    static let header = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        {{#autoRefresh}}<meta http-equiv="refresh" content="5">{{/autoRefresh}}
        <title>{{title}} · calgate console</title>
        <link rel="stylesheet" href="/admin/console.css">
        </head>
        <body>
        <header class="top">
          <a class="brand" href="/admin">calgate</a><span class="tagline">operator console</span>
          {{#loggedIn}}
          <nav><a href="/admin">Overview</a></nav>
          <form method="post" action="/admin/logout" class="logout">
            <input type="hidden" name="csrf" value="{{csrf}}">
            <button type="submit" class="link">Log out</button>
          </form>
          {{/loggedIn}}
        </header>
        <main>

        """

    static let footer = """

        </main>
        <footer class="bottom">calgate {{version}} · {{generatedAt}}{{#autoRefresh}} · refreshes every 5 s{{/autoRefresh}}</footer>
        </body>
        </html>

        """

    static let login = """
        {{> header}}
        <section class="login">
          <h1>Log in</h1>
          <p>Paste the admin token (the <code>admin-token</code> file in the data directory, or <code>admin_token</code> in the configuration).</p>
          {{#hasError}}<p class="notice error" role="alert">{{error}}</p>{{/hasError}}
          <form method="post" action="/admin/login">
            <input type="hidden" name="csrf" value="{{loginCSRF}}">
            <label for="token">Admin token</label>
            <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
            <button type="submit">Log in</button>
          </form>
          <p class="small">The session lasts {{sessionHours}} hours and is kept only in this gateway's memory.</p>
        </section>
        {{> footer}}
        """

    static let overview = """
        {{> header}}
        <h1>Overview <span class="pill {{statusClass}}" id="gateway-status">{{status}}</span></h1>
        <section class="cards">
          <div class="card"><h2>Inbox backlog</h2><p class="big" id="inbox-backlog">{{backlog}}</p><p class="small">oldest waiting {{backlogAge}}</p></div>
          <div class="card"><h2>Notifications / min</h2><p class="big" id="notifications-accepted">{{acceptedTotal}}</p><p class="small">accepted · <span id="notifications-rejected">{{rejectedTotal}}</span> rejected</p></div>
          <div class="card"><h2>Syncs / min</h2><p class="big" id="syncs-per-minute">{{syncsTotal}}</p><p class="small">{{syncsFailedTotal}} failed · {{runningSyncs}} running now</p></div>
          <div class="card"><h2>Renewals due in 24 h</h2><p class="big" id="renewals-due">{{renewalsDue}}</p><p class="small {{lapsedClass}}">{{lapsed}} lapsed</p></div>
          <div class="card"><h2>Missed by push</h2><p class="big" id="missed-by-push">{{missedTotal}}</p><p class="small">changes only the sweep found</p></div>
        </section>

        <section>
          <h2>Partitions</h2>
          <p class="small">{{partitionCount}} partitions; each instance reads and syncs only the calendars of the partitions it owns.</p>
          <table class="grid narrow" id="partition-owners"><thead><tr><th>Instance</th><th class="num">Partitions</th><th>Heartbeat</th></tr></thead><tbody>
          {{#partitionOwners}}
            <tr><td>{{instance}}{{self}}</td><td class="num">{{partitions}}</td><td class="{{liveClass}}">{{live}}</td></tr>
          {{/partitionOwners}}
          </tbody></table>
        </section>

        <section>
          <h2>Connections by provider</h2>
          <table class="grid" id="connections-by-state">
            <thead><tr><th>Provider</th><th class="num">Active</th><th class="num">Degraded</th><th class="num">Needs reconnect</th><th class="num">Disconnected</th><th class="num">Accepted / min</th><th class="num">Syncs / min</th><th class="num">Failed syncs / min</th><th class="num">Missed by push</th></tr></thead>
            <tbody>
            {{#providers}}
              <tr><th>{{name}}</th><td class="num">{{active}}</td><td class="num {{degradedClass}}">{{degraded}}</td><td class="num {{needsReconnectClass}}">{{needsReconnect}}</td><td class="num">{{disconnected}}</td><td class="num">{{accepted}}</td><td class="num">{{syncs}}</td><td class="num {{syncsFailedClass}}">{{syncsFailed}}</td><td class="num">{{missed}}</td></tr>
            {{/providers}}
            </tbody>
          </table>
        </section>

        <section>
          <h2>Notifications rejected in the last minute</h2>
          {{#hasRejections}}
          <table class="grid narrow" id="rejections"><thead><tr><th>Provider</th><th>Reason</th><th class="num">Count</th></tr></thead><tbody>
          {{#rejections}}<tr><td>{{provider}}</td><td><code>{{reason}}</code></td><td class="num bad">{{count}}</td></tr>{{/rejections}}
          </tbody></table>
          {{/hasRejections}}
          {{^hasRejections}}<p class="muted">None.</p>{{/hasRejections}}
        </section>

        <section>
          <h2>Subscription timeline</h2>
          <p class="small">Every live Google channel and Microsoft Graph subscription, from now to its expiry; the dark mark is when calgate plans to renew it. Red ones have lapsed.</p>
          {{> timeline}}
        </section>

        <section>
          <h2>Connections</h2>
          {{^hasConnections}}<p class="muted">No connections yet.</p>{{/hasConnections}}
          {{#hasConnections}}
          <table class="grid" id="connections">
            <thead><tr><th>Connection</th><th>User</th><th>Provider</th><th>State</th><th>Calendars</th><th>Last sync</th><th>Reason</th></tr></thead>
            <tbody>
            {{#connections}}
              <tr><td><a href="/admin/connections/{{id}}">{{id}}</a></td><td>{{user}}</td><td>{{provider}}</td><td><span class="pill {{stateClass}}">{{state}}</span></td><td>{{calendars}}</td><td>{{lastSync}}</td><td class="reason">{{reason}}</td></tr>
            {{/connections}}
            </tbody>
          </table>
          {{/hasConnections}}
          {{#connectionsTruncated}}<p class="small">Showing the first {{connectionsShown}} of {{connectionsTotal}}.</p>{{/connectionsTruncated}}
        </section>
        {{> footer}}
        """

    static let timeline = """
        {{#timeline}}
        <svg class="timeline" id="subscription-timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {{width}} {{height}}" role="img" aria-labelledby="timeline-title">
          <title id="timeline-title">Subscription timeline: {{count}} live, {{lapsedCount}} lapsed</title>
          {{#ticks}}<line class="tick" x1="{{x}}" y1="22" x2="{{x}}" y2="{{bottom}}"/><text class="tick-label" x="{{x}}" y="14" text-anchor="middle">{{label}}</text>{{/ticks}}
          {{#rows}}
          <g class="row" data-provider="{{provider}}"{{#lapsed}} data-lapsed="true"{{/lapsed}}>
            <title>{{tooltip}}</title>
            <text class="label" x="8" y="{{textY}}">{{label}}</text>
            <rect class="bar {{barClass}}" x="{{barX}}" y="{{barY}}" width="{{barWidth}}" height="16" rx="3"/>
            {{#hasRenewal}}<line class="renew" x1="{{renewX}}" y1="{{markTop}}" x2="{{renewX}}" y2="{{markBottom}}"/>{{/hasRenewal}}
            <text class="expiry" x="{{expiryX}}" y="{{textY}}">{{expiryText}}</text>
          </g>
          {{/rows}}
          <line class="now" x1="{{plotLeft}}" y1="22" x2="{{plotLeft}}" y2="{{bottom}}"/>
        </svg>
        <p class="legend"><span class="swatch google"></span>Google channel <span class="swatch microsoft"></span>Graph subscription <span class="swatch lapsed"></span>lapsed <span class="swatch renew"></span>planned renewal{{#hasHidden}} · {{hidden}} more not drawn{{/hasHidden}}</p>
        {{/timeline}}
        {{^timeline}}<p class="muted" id="subscription-timeline-empty">No live channels or subscriptions.</p>{{/timeline}}
        """

    static let connection = """
        {{> header}}
        <p class="crumbs"><a href="/admin">Overview</a> › {{connection.id}}</p>
        <h1>{{connection.provider}} connection <code>{{connection.id}}</code> <span class="pill {{connection.stateClass}}">{{connection.state}}</span></h1>
        {{#hasNotice}}<p class="notice {{noticeClass}}" role="status">{{notice}}</p>{{/hasNotice}}
        <section class="cards">
          <div class="card"><h2>User</h2><p class="value">{{connection.user}}</p><p class="small">account {{connection.account}} · {{connection.visibility}}</p></div>
          <div class="card"><h2>Connected</h2><p class="value">{{connection.created}}</p></div>
          <div class="card"><h2>Last error</h2><p class="value reason" id="last-error">{{lastError}}</p>{{#connection.hasNextRetry}}<p class="small">next retry {{connection.nextRetry}}</p>{{/connection.hasNextRetry}}</div>
        </section>

        <section class="actions">
          <h2>Actions</h2>
          {{#canSync}}
          <form method="post" action="/admin/connections/{{connection.id}}/resync">
            <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="mode" value="delta">
            <button type="submit">Sync now</button>
          </form>
          <form method="post" action="/admin/connections/{{connection.id}}/resync">
            <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="mode" value="full">
            <button type="submit">Full re-sync</button>
          </form>
          {{#canRenew}}
          <form method="post" action="/admin/connections/{{connection.id}}/renew">
            <input type="hidden" name="csrf" value="{{csrf}}">
            <button type="submit">Renew now</button>
          </form>
          {{/canRenew}}
          {{/canSync}}
          {{#canDisconnect}}<a class="button danger" href="/admin/connections/{{connection.id}}/disconnect">Disconnect…</a>{{/canDisconnect}}
        </section>

        <section>
          <h2>Calendars</h2>
          <table class="grid" id="calendars">
            <thead><tr><th>Calendar</th><th>Synced</th><th>Cursor age</th><th>Last sync</th><th>Full sync progress</th></tr></thead>
            <tbody>
            {{#calendars}}
              <tr><td>{{name}}<br><span class="small"><code>{{id}}</code></span></td><td>{{#selected}}yes{{/selected}}{{^selected}}no{{/selected}}</td><td>{{cursorAge}}</td>
              <td class="{{lastSyncClass}}">{{lastSync}}{{#hasLastSyncMessage}}<br><span class="small reason">{{lastSyncMessage}}</span>{{/hasLastSyncMessage}}</td>
              <td>{{#progress}}<span class="progress {{phase}}">{{phase}}</span> {{pages}} pages · {{fetched}} fetched · {{applied}} applied<br><span class="small">started {{started}}</span>{{/progress}}{{^progress}}<span class="muted">—</span>{{/progress}}</td></tr>
            {{/calendars}}
            </tbody>
          </table>
        </section>

        <section>
          <h2>Channels and subscriptions</h2>
          {{> timeline}}
        </section>

        <section>
          <h2>Recent notifications</h2>
          {{^hasNotifications}}<p class="muted">None since the gateway started.</p>{{/hasNotifications}}
          {{#hasNotifications}}
          <table class="grid narrow" id="notifications"><thead><tr><th>Received</th><th>Calendar</th><th>Kind</th></tr></thead><tbody>
          {{#notifications}}<tr><td>{{received}}</td><td>{{calendar}}</td><td><code>{{kind}}</code></td></tr>{{/notifications}}
          </tbody></table>
          {{/hasNotifications}}
        </section>
        {{> footer}}
        """

    static let confirmDisconnect = """
        {{> header}}
        <p class="crumbs"><a href="/admin">Overview</a> › <a href="/admin/connections/{{connection.id}}">{{connection.id}}</a> › disconnect</p>
        <section class="confirm">
          <h1>Disconnect {{connection.provider}} connection <code>{{connection.id}}</code>?</h1>
          <p>This stops its channels or subscriptions, removes every appointment imported through it from LeadCenter, and marks it disconnected. User <strong>{{connection.user}}</strong> has to connect the account again to undo it.</p>
          <form method="post" action="/admin/connections/{{connection.id}}/disconnect">
            <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="confirm" value="yes">
            <button type="submit" class="danger">Disconnect</button>
            <a class="button" href="/admin/connections/{{connection.id}}">Cancel</a>
          </form>
        </section>
        {{> footer}}
        """

    /// Served at `/admin/console.css` (the Content-Security-Policy allows styles from the gateway only).
    static let stylesheet = """
        :root { --fg: #1d2430; --muted: #6b7482; --line: #e3e7ee; --bg: #f6f7f9; --card: #fff; --accent: #2f6fde;
                --ok: #1f8a4c; --warn: #b7791f; --bad: #c53030; --google: #4285f4; --microsoft: #7b61c9; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); }
        a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
        code { font: 12px/1.3 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #eef1f5; padding: 1px 4px; border-radius: 3px; }
        header.top { display: flex; align-items: center; gap: 16px; padding: 10px 24px; background: #1d2430; color: #fff; }
        header.top .brand { color: #fff; font-weight: 700; font-size: 18px; }
        header.top .tagline { color: #aab3c0; }
        header.top nav { margin-left: auto; } header.top nav a { color: #dfe6f0; }
        header.top .logout { margin: 0; }
        button.link { background: none; border: 0; color: #dfe6f0; cursor: pointer; font: inherit; padding: 0; }
        main { max-width: 1200px; margin: 0 auto; padding: 20px 24px 40px; }
        h1 { font-size: 22px; margin: 8px 0 16px; } h2 { font-size: 15px; margin: 24px 0 8px; }
        section.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 12px; }
        .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
        .card h2 { margin: 0 0 4px; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
        .card .big { font-size: 30px; font-weight: 650; margin: 0; }
        .card .value { font-size: 15px; margin: 2px 0; word-break: break-word; }
        .small { font-size: 12px; color: var(--muted); margin: 2px 0; }
        .muted { color: var(--muted); }
        table.grid { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
        table.grid.narrow { width: auto; min-width: 420px; }
        table.grid th, table.grid td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
        table.grid thead th { background: #f0f3f7; font-size: 12px; color: var(--muted); font-weight: 600; }
        table.grid tbody tr:last-child td, table.grid tbody tr:last-child th { border-bottom: 0; }
        .num { text-align: right !important; font-variant-numeric: tabular-nums; }
        .warn { color: var(--warn); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; } .good { color: var(--ok); }
        .reason { color: #4a5260; max-width: 420px; word-break: break-word; }
        .pill { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; vertical-align: middle; }
        .pill.ok, .pill.active { background: #e3f4ea; color: var(--ok); }
        .pill.degraded { background: #fdf1dc; color: var(--warn); }
        .pill.failing, .pill.needs_reconnect { background: #fde6e6; color: var(--bad); }
        .pill.disconnected { background: #eceef2; color: var(--muted); }
        .notice { padding: 8px 12px; border-radius: 6px; background: #e8f0fd; border: 1px solid #c9dbfa; }
        .notice.error { background: #fde6e6; border-color: #f5c2c2; color: var(--bad); }
        .crumbs { color: var(--muted); margin: 0; }
        section.actions form { display: inline-block; margin: 0 8px 8px 0; }
        button, a.button { display: inline-block; font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid #c4ccd8; background: #fff; color: var(--fg); cursor: pointer; }
        button:hover, a.button:hover { background: #f0f3f7; text-decoration: none; }
        button.danger, a.button.danger { border-color: #e6a3a3; color: var(--bad); }
        section.login, section.confirm { max-width: 520px; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 24px; margin: 40px auto; }
        section.login label { display: block; font-weight: 600; margin: 12px 0 4px; }
        section.login input[type=password] { width: 100%; padding: 7px 10px; border: 1px solid #c4ccd8; border-radius: 6px; font: inherit; margin-bottom: 12px; }
        .progress { font-weight: 600; } .progress.fetching, .progress.applying { color: var(--accent); } .progress.failed { color: var(--bad); } .progress.done { color: var(--ok); }
        svg.timeline { width: 100%; height: auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
        svg.timeline .tick { stroke: #edf0f4; } svg.timeline .tick-label { font-size: 11px; fill: var(--muted); }
        svg.timeline .label { font-size: 12px; fill: var(--fg); } svg.timeline .expiry { font-size: 11px; fill: var(--muted); }
        svg.timeline .bar.google { fill: var(--google); } svg.timeline .bar.microsoft { fill: var(--microsoft); }
        svg.timeline .bar.lapsed { fill: var(--bad); }
        svg.timeline .renew { stroke: #1d2430; stroke-width: 3; }
        svg.timeline .now { stroke: var(--fg); stroke-width: 1.5; }
        .legend { font-size: 12px; color: var(--muted); }
        .legend .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -2px; margin: 0 4px 0 12px; }
        .legend .swatch.google { background: var(--google); } .legend .swatch.microsoft { background: var(--microsoft); }
        .legend .swatch.lapsed { background: var(--bad); } .legend .swatch.renew { background: #1d2430; width: 3px; }
        footer.bottom { max-width: 1200px; margin: 0 auto; padding: 0 24px 24px; font-size: 12px; color: var(--muted); }

        """
}
