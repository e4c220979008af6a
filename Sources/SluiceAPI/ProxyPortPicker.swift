import SluiceCore

/// Chooses the ports a session's proxies are opened on, from `api.proxy_ports`: round the range from where the last
/// choice stopped, so a port just let go is not the next one handed out, skipping the ports the caller has taken
/// (its proxies', and those other requests are trying right now). Pure: whether a port is free is learned by
/// binding it (`SessionProxies`), which is the only answer that cannot go stale.
struct ProxyPortPicker: Sendable {
    let range: PortRange
    private var cursor: Int

    init(range: PortRange) {
        self.range = range
        self.cursor = range.lower
    }

    /// The next port of the range, from the cursor on, that `taken` does not hold; nil when it holds all of them.
    mutating func next(excluding taken: Set<Int>) -> Int? {
        for _ in 0..<range.count {
            let port = cursor
            cursor = cursor == range.upper ? range.lower : cursor + 1
            if !taken.contains(port) { return port }
        }
        return nil
    }
}
