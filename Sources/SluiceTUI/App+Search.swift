import Foundation
import SluiceModel
import SluiceStore

/// Full-text search of all history from the TUI: a bare word in the view filter (`f`) or a search (`/`) is also
/// looked up in the store's index (`SearchIndex`), off the UI thread, so it finds a flow by a word anywhere in what
/// was recorded, not only in the first bytes the list holds. The rows match as soon as the list's own text does;
/// the index's answer widens the match when it comes back.
extension App {
    /// The most flows one word's lookup returns: bounds the memory its answer takes (the newest flows that have it).
    static let indexLookupLimit = 100_000

    /// Looks up the words not looked up yet; each answer refilters the list.
    func lookUpInIndex(_ words: [String]) {
        guard let searchIndex else { return }
        let wanted = Set(words).subtracting(indexHits.keys)
        guard !wanted.isEmpty else { return }
        for word in wanted { indexHits[word] = [] }
        background.async { [inbox] in
            var found: [String: Set<FlowID>] = [:]
            var failure: String?
            for word in wanted {
                do {
                    found[word] = Set(try searchIndex.flows(matching: [word], limit: Self.indexLookupLimit))
                } catch {
                    failure = "full-text search: \(error)"
                }
            }
            inbox.post { app in
                for (word, flows) in found { app.indexHits[word] = flows }
                if let failure { app.setStatus(failure, isError: true) }
                app.refilterFlows()
                if let filter = app.viewFilter, !app.filtering, filter.plainWords.contains(where: { found[$0] != nil }) {
                    app.setStatus("filter: \(filter.text)" + app.filterCount)
                }
                if app.view == .flows, !app.search.isEmpty, found[app.search] != nil { app.findNext(from: app.flows.window.selected) }
            }
        }
    }

    /// Forgets what the index answered: new flows were indexed since (a new filter or search asks again).
    func forgetIndexLookups() {
        indexHits = [:]
    }
}
