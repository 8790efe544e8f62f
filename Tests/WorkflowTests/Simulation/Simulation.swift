import Foundation
import MobileEngage
import TestSupport
import Workflow

/// The tests' seeded generator, with what a schedule draws.
extension SplitMix64 {
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

/// One step of a schedule. A schedule is a plain list, so a failing one shrinks by dropping steps.
enum SimStep: Hashable, CustomStringConvertible {
    case start(device: Int, token: Int?, newClient: Bool, login: Int?)
    case setToken(device: Int, token: Int)
    case removeToken(device: Int)
    case login(device: Int, value: Int)
    case logout(device: Int)
    case events(device: Int)
    case forget(device: Int)
    /// A backend reports the token dead (`POST .../tokens/invalidate`).
    case invalidate(token: Int)
    /// The engine takes the device's next step (if it is due and has none in flight); ME answers with `fault`.
    case send(device: Int, fault: SimFault)
    /// The engine commits the device's step in flight.
    case commit(device: Int)
    /// The bridge is killed: steps in flight are not committed.
    case crash
    case expireContactTokens
    case revokeRefreshTokens(Bool)
    case tick(ms: Int)

    var description: String {
        switch self {
        case .start(let d, let t, let n, let l):
            "start d\(d) token \(t.map { "T\($0)" } ?? "none")\(n ? " new clientId" : "")\(l.map { " login u\($0)" } ?? "")"
        case .setToken(let d, let t): "set-token d\(d) T\(t)"
        case .removeToken(let d): "remove-token d\(d)"
        case .login(let d, let v): v == 2 ? "OpenID login d\(d)" : "login d\(d) u\(v)"
        case .logout(let d): "logout d\(d)"
        case .events(let d): "events d\(d)"
        case .forget(let d): "forget d\(d)"
        case .invalidate(let t): "T\(t) reported dead"
        case .send(let d, let f): "engine sends for d\(d)\(f == .none ? "" : ", ME fault \(f.rawValue)")"
        case .commit(let d): "engine commits d\(d)"
        case .crash: "bridge killed"
        case .expireContactTokens: "ME: contact tokens expire"
        case .revokeRefreshTokens(let on): on ? "ME: refresh tokens refused" : "ME: refresh tokens accepted again"
        case .tick(let ms): "clock +\(ms) ms"
        }
    }
}

/// The schedules' shape: a few devices sharing a small pool of tokens, so moves are frequent.
/// Odd seeds get a hostile ME and a longer schedule of 2 devices: contact tokens expire three times as often and
/// refreshes are refused more often, so that an expiry lands between a re-link and its replay (the end-to-end
/// simulation found such a path first; short schedules of 3 devices almost never reach it).
struct SimShape {
    var devices = 3
    var tokens = 3
    var steps = 60

    func schedule(seed: UInt64) -> [SimStep] {
        var r = SplitMix64(seed: seed)
        let hostile = seed % 2 == 1
        let (devices, count) = hostile ? (2, steps * 2) : (self.devices, steps)
        var steps: [SimStep] = []
        for _ in 0..<count {
            let d = r.below(devices)
            let roll = r.below(100)
            switch roll {
            case 0..<12: steps.append(.start(device: d, token: r.chance(85) ? r.below(tokens) : nil, newClient: r.chance(15), login: r.chance(20) ? r.below(2) : nil))
            case 12..<22: steps.append(.setToken(device: d, token: r.below(tokens)))
            case 22..<25: steps.append(.removeToken(device: d))
            case 25..<29: steps.append(.login(device: d, value: r.below(3)))  // u2: an OpenID login
            case 29..<32: steps.append(.logout(device: d))
            case 32..<35: steps.append(.events(device: d))
            case 35..<37: steps.append(r.chance(50) ? .forget(device: d) : .invalidate(token: r.below(tokens)))
            case 37..<62:
                // One fault in ten is permanent: the device fails until its backend writes again.
                let fault: SimFault = r.chance(70) ? .none : r.chance(10) ? .rejected : SimFault.transient[r.below(SimFault.transient.count)]
                steps.append(.send(device: d, fault: fault))
            case 62..<84: steps.append(.commit(device: d))
            case 84..<86: steps.append(.crash)
            case 86..<90: steps.append(.expireContactTokens)
            case 90..<92: steps.append(.revokeRefreshTokens(r.chance(50)))
            case 92..<100 where hostile: steps.append(r.chance(75) ? .expireContactTokens : .revokeRefreshTokens(r.chance(60)))
            default: steps.append(.tick(ms: 1 + r.below(3000)))
            }
        }
        return steps
    }
}

/// The bridge's engine and store against the model ME, one step at a time, with the invariants checked after
/// every step and at quiescence.
struct Simulation {
    static let app = "EMS12-34567"
    var store = SimStore(appCode: Simulation.app, policy: AppPolicy())
    var me = ModelME()
    var nowMs: Int64 = 1_700_000_000_000
    var inFlight: [String: InFlight] = [:]
    var violations: [String] = []
    /// Tokens reported dead, with the device that held them then and has not been sent them again since: ME must
    /// not hold them on that device's client at rest.
    var dead: [Int: String] = [:]
    /// The backend's side: the newest token (nil: removed) and contact it asked for, per device, whether the write
    /// was stored or deduplicated. At rest every device must have what its backend asked for last (I3), whatever
    /// failed, was retried or was deduplicated on the way.
    var askedToken: [String: Int?] = [:]
    var askedContact: [String: ContactRequest] = [:]
    /// Devices whose backend's last write was a forget: at rest they are gone.
    var forgotten: Set<String> = []
    let planner = Planner(policy: AppPolicy(), sdkVersion: "sim")
    let reducer = Reducer(retry: RetryPolicy(initialDelayMs: 100, maxDelayMs: 2000))
    var clientSerial = 0

    struct InFlight {
        var work: SimStore.Work
        var head: Intent
        var call: MECall
        var context: MERequestContext
        var answer: MEAnswer
    }

    static func token(_ n: Int) -> TokenRef {
        let hash = String(repeating: String(n % 10), count: 8) + String(repeating: "a", count: 56)
        return TokenRef(provider: "fcm", platform: "android", pushToken: "fcm-token-\(n)", tokenHash: hash)
    }

    var now: Date { Date(timeIntervalSince1970: Double(nowMs) / 1000) }

    mutating func run(_ steps: [SimStep]) {
        for step in steps {
            apply(step)
            nowMs += 1
            checkAlways(after: step)
        }
        quiesce()
    }

    /// The backend asked `id` for token `t` (nil: none): a device that had asked for it before loses it (it moved).
    mutating func ask(token t: Int?, for id: String) {
        if let t { for (other, asked) in askedToken where other != id && asked == t { askedToken[other] = .some(nil) } }
        askedToken[id] = .some(t)
    }

    mutating func apply(_ step: SimStep) {
        // A write the store queued after a forget keeps (or makes) the device: it is no longer forgotten.
        let firstNewIntent = store.nextIntentId
        defer {
            switch step {
            case .start(let d, _, _, _), .setToken(let d, _), .removeToken(let d), .login(let d, _), .logout(let d), .events(let d):
                if store.nextIntentId > firstNewIntent, store.devices["d\(d)"] != nil { forgotten.remove("d\(d)") }
            default:
                break
            }
        }
        let devices = store.devices
        let exists = { (d: Int) in devices["d\(d)"] != nil }
        switch step {
        case .start(let d, let t, _, let login):
            if let t { ask(token: t, for: "d\(d)") }
            if let login { askedContact["d\(d)"] = .identified(fieldId: 3, value: "u\(login)") }
        case .setToken(let d, let t): ask(token: t, for: "d\(d)")
        case .removeToken(let d) where exists(d): ask(token: nil, for: "d\(d)")
        case .login(let d, let v) where exists(d):
            askedContact["d\(d)"] = v == 2 ? .openId(fieldId: 3, token: "id-token-u2") : .identified(fieldId: 3, value: "u\(v)")
        case .logout(let d) where exists(d): askedContact["d\(d)"] = .anonymous
        case .forget(let d) where exists(d):
            askedToken["d\(d)"] = nil
            askedContact["d\(d)"] = nil
            forgotten.insert("d\(d)")
        case .invalidate(let t):
            for (id, asked) in askedToken where asked == t && store.claims[Self.token(t).tokenHash] == id { askedToken[id] = .some(nil) }
        default:
            break
        }
        switch step {
        case .start(let d, let t, let newClient, let login):
            var clientId: String?
            if newClient {
                clientSerial += 1
                clientId = "backend-client-\(clientSerial)"
            }
            let start = StartIntent(
                provider: "fcm", platform: "android", token: t.map(Self.token), info: DeviceInfo(),
                contact: login.map { .identified(fieldId: 3, value: "u\($0)") }, clientId: clientId)
            if store.accept(.start(start), device: "d\(d)", now: nowMs), let t, dead[t] == "d\(d)" { dead[t] = nil }
        case .setToken(let d, let t):
            if store.accept(.setToken(Self.token(t)), device: "d\(d)", now: nowMs), dead[t] == "d\(d)" { dead[t] = nil }
        case .removeToken(let d): store.accept(.removeToken, device: "d\(d)", now: nowMs)
        case .login(let d, let v):
            let write: DeviceWrite = v == 2 ? .openIdLogin(fieldId: 3, token: "id-token-u2") : .login(fieldId: 3, value: "u\(v)")
            store.accept(write, device: "d\(d)", now: nowMs)
        case .logout(let d): store.accept(.logout, device: "d\(d)", now: nowMs)
        case .events(let d): store.accept(.events([CustomEvent(name: "e", timestamp: "2026-01-01T00:00:00.000Z", attributes: nil)]), device: "d\(d)", now: nowMs)
        case .forget(let d): store.accept(.forget, device: "d\(d)", now: nowMs)
        case .invalidate(let t):
            if let holder = store.invalidate(tokenHash: Self.token(t).tokenHash, now: nowMs) { dead[t] = holder }
        case .send(let d, let fault): send("d\(d)", fault: fault)
        case .commit(let d): commitInFlight("d\(d)")
        case .crash:
            inFlight.removeAll()
            me.bridgeCrashed()
        case .expireContactTokens: me.expireContactTokens()
        case .revokeRefreshTokens(let on): me.refreshRevoked = on
        case .tick(let ms): nowMs += Int64(ms)
        }
    }

    /// The engine's turn for one device, up to its next ME call (answered, not yet committed).
    mutating func send(_ id: String, fault: SimFault) {
        guard inFlight[id] == nil, let due = store.devices[id]?.dueAt, due <= nowMs else { return }
        for _ in 0..<20 {
            guard let work = store.work(id) else { return }
            let plan = planner.plan(state: work.state, queue: work.queue, appCode: Self.app, moveBlocked: work.moveBlocked, nowMs: nowMs)
            switch plan {
            case .idle:
                store.commit(id, state: work.state, headId: nil, next: .whenWoken, newestSeen: work.newestIntentId, now: nowMs)
                return
            case .wait(let reason):
                var state = work.state
                if reason == .login { state.waitingFor = "login" }
                let next: SimStore.Next = reason == .login ? .whenWoken : .at(nowMs + 2000)
                store.commit(id, state: state, headId: work.queue.first?.id, next: next, newestSeen: work.newestIntentId, now: nowMs)
                return
            case .advance(let state, let pop):
                store.commit(id, state: state, headId: work.queue.first?.id, popHead: pop, next: .now, newestSeen: work.newestIntentId, now: nowMs)
            case .forget:
                // As the engine's `Turn`: the forget covers what was queued up to it, not what came after it.
                let forgetId = work.queue.first?.id ?? work.newestIntentId
                store.commit(id, state: work.state, headId: work.queue.first?.id, forget: true, next: .whenWoken, newestSeen: forgetId, now: nowMs)
                return
            case .send(let call, let context):
                guard let head = work.queue.first else { return }
                if let marked = Planner.beforeSending(call, state: work.state, head: head) {
                    store.commit(id, state: marked, headId: head.id, next: .now, newestSeen: work.newestIntentId, now: nowMs)
                    continue
                }
                let answer = me.handle(call, context, fault: fault)
                inFlight[id] = InFlight(work: work, head: head, call: call, context: context, answer: answer)
                return
            }
        }
    }

    mutating func commitInFlight(_ id: String) {
        guard let f = inFlight.removeValue(forKey: id) else { return }
        let t = reducer.apply(state: f.work.state, head: f.head, call: f.call, context: f.context, answer: f.answer, now: now, jitter: 0.5)
        let next: SimStore.Next = (t.retryAt ?? t.notBefore).map { .at(Int64($0.timeIntervalSince1970 * 1000)) } ?? (t.state.failed ? .whenWoken : .now)
        var state = t.state
        if next == .now {
            // As the engine: the next call's PUT token is marked in this commit.
            var queue = f.work.queue
            if let progress = t.headProgress { queue[0].progress = progress }
            state = planner.markingNextPut(t.state, queue: queue, appCode: Self.app, moveBlocked: f.work.moveBlocked, nowMs: nowMs)
        }
        store.commit(id, state: state, headId: f.head.id, headProgress: t.headProgress, next: next, newestSeen: f.work.newestIntentId, now: nowMs)
    }

    /// I5 after every step: never `registered` without the newest token at ME.
    mutating func checkAlways(after step: SimStep) {
        for id in store.devices.keys.sorted() {
            guard let status = store.status(id) else { continue }
            if status.state == "registered" {
                if status.tokenHash == nil || status.sentTokenHash != status.tokenHash {
                    violations.append("I5: \(id) registered with tokenHash \(status.tokenHash ?? "null") while ME was sent \(status.sentTokenHash ?? "none") (after '\(step)')")
                }
            }
        }
        if !me.violations.isEmpty {
            violations += me.violations.map { "\($0) (at '\(step)')" }
            me.violations.removeAll()
        }
    }

    /// ME heals; every failed device gets a fresh intent (its start again); the engine runs until nothing is due.
    /// Then I1, I3 and I5 at rest.
    mutating func quiesce() {
        me.refreshRevoked = false
        for id in inFlight.keys.sorted() { commitInFlight(id) }
        for id in store.devices.keys.sorted() where store.devices[id]?.state.failed == true {
            // A new intent for a failed device: the backend repeats its newest request (a removal, a login; the
            // DELETE of a device it forgot, and nothing else for that one).
            if forgotten.contains(id) {
                store.accept(.forget, device: id, now: nowMs)
                continue
            }
            if store.devices[id]?.tokenHash == nil {
                ask(token: nil, for: id)
                store.accept(.removeToken, device: id, now: nowMs)
            }
            store.accept(.events([CustomEvent(name: "retry", timestamp: "2026-01-01T00:00:00.000Z", attributes: nil)]), device: id, now: nowMs)
        }
        var rounds = 0
        while rounds < 2000 {
            rounds += 1
            let due = store.devices.filter { $0.value.dueAt != nil }.keys.sorted()
            guard !due.isEmpty else { break }
            let ready = due.filter { store.devices[$0]!.dueAt! <= nowMs }
            if ready.isEmpty {
                nowMs = due.map { store.devices[$0]!.dueAt! }.min()!
                continue
            }
            for id in ready {
                send(id, fault: .none)
                commitInFlight(id)
                nowMs += 1
            }
            checkAlways(after: .tick(ms: 0))
        }
        if rounds >= 2000 { violations.append("I3: the engine did not come to rest within 2,000 rounds with ME healthy") }
        checkAtRest()
    }

    mutating func checkAtRest() {
        for (token, holders) in me.holders(appCode: Self.app) where holders.count > 1 {
            violations.append("I1 at rest: \(holders.sorted()) hold \(token)")
        }
        var clientsOfDevices: Set<String> = []
        for id in store.devices.keys.sorted() {
            let d = store.devices[id]!
            guard let status = store.status(id) else { continue }
            clientsOfDevices.insert(d.state.clientId)
            let client = me.clients[d.state.clientId]
            if !d.queue.isEmpty || d.state.failed {
                violations.append("I3: \(id) did not converge: state \(status.state), \(d.queue.count) queued, lastError \(status.lastErrorMessage ?? "none")")
                continue
            }
            let wanted = d.state.wantedToken
            switch status.state {
            case "registered":
                if client?.pushToken == nil || client?.pushToken != wanted?.pushToken || status.tokenHash != wanted?.tokenHash {
                    violations.append("I3/I5: \(id) is registered, but ME holds \(client?.pushToken ?? "no token") and the status says \(status.tokenHash ?? "null")")
                }
            case "unregistered":
                if client?.pushToken != nil { violations.append("I5: \(id) is unregistered, but ME holds \(client!.pushToken!) on its client") }
                if status.tokenHash != nil { violations.append("I5: \(id) is unregistered with tokenHash \(status.tokenHash!)") }
            default:
                violations.append("I3: \(id) rests in state \(status.state)")
            }
            // The contact: ME's link is the status's, and a device that linked one has the one the backend asked for.
            let linked = d.state.linkedContact
            // (A link whose answer was lost is at ME without the bridge knowing: tolerated until another link.)
            if client?.contact != linked && !(linked == nil && client?.unseenLink == true) {
                violations.append("I3: \(id)'s client is linked to \(client?.contact?.kind ?? "no contact") at ME, the status says \(status.contactKind)")
            }
            if let linked, linked != (d.state.wantedContact ?? .anonymous) {
                violations.append("I3: \(id) is linked to \(linked.kind), the backend asked for \((d.state.wantedContact ?? .anonymous).kind)")
            }
            // What the backend asked for last, by its own account (not the bridge's).
            if let asked = askedContact[id], (d.state.wantedContact ?? .anonymous) != asked {
                violations.append("I3: \(id) wants contact \(String(describing: d.state.wantedContact)), its backend asked last for \(asked)")
            }
            if let asked = askedToken[id], d.state.wantedToken?.pushToken != asked.map({ Self.token($0).pushToken }) {
                violations.append("I3: \(id) wants token \(d.state.wantedToken?.pushToken ?? "none"), its backend asked last for \(asked.map { "T\($0)" } ?? "none")")
            }
        }
        // A device whose backend's last word was a forget is gone (writes that need a device, sent after it, do not
        // bring it back; a release of its old token queued after it neither).
        for id in forgotten.sorted() where store.devices[id] != nil {
            violations.append("I3: \(id) was forgotten last, but it is still there (\(store.devices[id]!.queue.count) queued)")
        }
        // A token reported dead and not sent again is not at ME on the device that held it.
        for (t, id) in dead.sorted(by: { $0.key < $1.key }) {
            guard let d = store.devices[id], me.clients[d.state.clientId]?.pushToken == Self.token(t).pushToken else { continue }
            violations.append("invalidation: \(id)'s client still holds T\(t), reported dead and not sent again")
        }
        // A client no device uses any more (a forgotten device, an old client id) keeps no token.
        for (clientId, client) in me.clients where !clientsOfDevices.contains(clientId) && client.pushToken != nil {
            violations.append("I1/I3: client \(clientId), no longer any device's, still holds \(client.pushToken!)")
        }
    }

    /// Runs `steps` on a fresh simulation; the violations found.
    static func failures(of steps: [SimStep]) -> [String] {
        var sim = Simulation()
        sim.run(steps)
        return sim.violations
    }

    /// The shortest schedule found by dropping steps that still fails.
    static func shrink(_ steps: [SimStep], fails: ([SimStep]) -> Bool = { !failures(of: $0).isEmpty }) -> [SimStep] {
        var current = steps
        var chunk = max(1, current.count / 2)
        while chunk >= 1 {
            var i = 0
            var removedAny = false
            while i < current.count {
                var candidate = current
                candidate.removeSubrange(i..<min(current.count, i + chunk))
                if fails(candidate) {
                    current = candidate
                    removedAny = true
                } else {
                    i += chunk
                }
            }
            if !removedAny { chunk /= 2 }
        }
        return current
    }
}
