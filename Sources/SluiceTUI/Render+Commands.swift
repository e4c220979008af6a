import Foundation
import SluiceModel

/// Drawing the Commands (4) and Alerts (5) screens: lists like the flows', newest at the bottom, risk in its colour.
extension App {
    func drawCommands(_ canvas: Canvas) {
        let columns = CommandColumns(width: canvas.width)
        canvas.put(1, 0, columns.line(time: "TIME", flow: "FLOW", user: "USER@TARGET", kind: "KIND", risk: "RISK", action: "ACTION", rule: "RULE", result: "RESULT", text: "COMMAND"), .dim)
        let list = log.commands
        guard !list.visible.isEmpty else {
            if list.isEmpty {
                drawEmpty(canvas, historyLoading ? "Loading history…" : "No commands yet.", "SSH and SQL commands appear here as they are captured, with the policy's risk and action.")
            } else {
                canvas.put(3, 2, "No command matches the filter (f to change it).", .dim)
            }
            return
        }
        let top = 2
        let positions = log.commands.window(height: max(1, canvas.height - 3))
        for (line, position) in positions.enumerated() {
            let row = list.rows[list.visible[position]]
            let command = row.command
            let isSelected = position == list.selected
            let pending = command.decision == .pending && intercept.hold(of: row.key) != nil
            var role: Role = command.decision == .blocked ? .blocked : (pending ? .held : .normal)
            if marks.isMarked(command.flowID, stored: flows[command.flowID]?.storedMark ?? false) && role == .normal { role = .marked }
            if isSelected {
                role = .selection
                canvas.fill(top + line, .selection)
            }
            let text = columns.line(
                time: String(Timestamp.timeOfDay(command.time).prefix(8)), flow: command.flowID.description, user: row.userAtTarget.visible,
                kind: command.kind.rawValue, risk: command.risk.rawValue, action: row.actionText,
                rule: command.rule ?? "-", result: row.resultText.visible, text: command.text.visible
            )
            canvas.put(top + line, 0, text, role)
            if !isSelected {
                canvas.put(top + line, columns.riskOffset, command.risk.rawValue.fitted(to: columns.risk), CommandRow.role(command.risk))
                if command.kind == .sql, role == .normal || role == .marked {
                    drawSQL(canvas, row: top + line, column: columns.textOffset, width: columns.text, command.text.visible)
                }
            }
        }
    }

    /// SQL in its colours, over the plain text already drawn: keywords, literals, numbers, comments.
    private func drawSQL(_ canvas: Canvas, row: Int, column: Int, width: Int, _ text: String) {
        let characters = Array(text)
        // A text cut to the column ends in an ellipsis, which keeps its own style.
        let limit = characters.count > width ? width - 1 : width
        for span in SQLHighlighter.spans(text) where span.range.lowerBound < limit {
            let end = min(span.range.upperBound, limit)
            let role: Role
            switch span.kind {
            case .keyword: role = .sqlKeyword
            case .string: role = .sqlString
            case .number: role = .sqlNumber
            case .comment: role = .sqlComment
            }
            canvas.put(row, column + span.range.lowerBound, String(characters[span.range.lowerBound..<end]), role)
        }
    }

    func drawAlerts(_ canvas: Canvas) {
        let ruleWidth = min(28, max(12, canvas.width / 5))
        func line(time: String, level: String, rule: String, flow: String, acknowledged: String, message: String) -> String {
            time.fitted(to: 8) + " " + level.fitted(to: 8) + " " + rule.fitted(to: ruleWidth) + " " + flow.fitted(to: 6) + " "
                + acknowledged.fitted(to: 3) + " " + message
        }
        canvas.put(1, 0, line(time: "TIME", level: "LEVEL", rule: "RULE", flow: "FLOW", acknowledged: "ACK", message: "MESSAGE"), .dim)
        let list = log.alerts
        guard !list.visible.isEmpty else {
            if list.isEmpty {
                drawEmpty(canvas, historyLoading ? "Loading history…" : "No alerts.", "Policy alerts (risky commands, blocked statements) appear here as they are raised.")
            } else {
                canvas.put(3, 2, "No alert matches the filter (f to change it).", .dim)
            }
            return
        }
        let top = 2
        let positions = log.alerts.window(height: max(1, canvas.height - 3))
        for (offset, position) in positions.enumerated() {
            let row = list.rows[list.visible[position]]
            let alert = row.alert
            let isSelected = position == list.selected
            if isSelected { canvas.fill(top + offset, .selection) }
            let text = line(
                time: String(Timestamp.timeOfDay(alert.time).prefix(8)), level: alert.level.rawValue, rule: alert.rule.visible,
                flow: alert.flowID?.description ?? "-", acknowledged: row.acknowledgement == nil ? "" : "✓", message: alert.message.visible
            )
            canvas.put(top + offset, 0, text, isSelected ? .selection : .normal)
            if !isSelected { canvas.put(top + offset, 9, alert.level.rawValue.fitted(to: 8), CommandRow.role(alert.level)) }
        }
    }
}

/// The Commands screen's columns at a width: the text takes what the others leave.
struct CommandColumns {
    let user: Int
    let action: Int
    let rule: Int
    let result: Int
    let risk = 8
    let text: Int

    init(width: Int) {
        // Time, flow, kind and risk have their widths; the rest is shared, the command's text taking the most.
        let shared = max(0, width - (8 + 1 + 6 + 1 + 5 + 1 + risk + 1) - 3)
        user = min(28, max(10, shared / 5))
        action = min(26, max(12, shared * 3 / 10))
        rule = min(20, max(6, shared / 8))
        // The result column only where the command's text keeps room beside it.
        result = shared >= 70 ? min(24, shared / 7) : 0
        text = max(0, shared - user - action - rule - (result > 0 ? result + 1 : 0))
    }

    /// Where the risk column starts, to draw it again in its colour.
    var riskOffset: Int { 8 + 1 + 6 + 1 + user + 1 + 5 + 1 }

    /// Where the command's text starts, to draw SQL in its colours.
    var textOffset: Int { riskOffset + risk + 1 + action + 1 + rule + 1 + (result > 0 ? result + 1 : 0) }

    func line(
        time: String, flow: String, user: String, kind: String, risk: String, action: String, rule: String, result: String, text: String
    ) -> String {
        time.fitted(to: 8) + " " + flow.fitted(to: 6) + " " + user.fitted(to: self.user) + " " + kind.fitted(to: 5) + " "
            + risk.fitted(to: self.risk) + " " + action.fitted(to: self.action) + " " + rule.fitted(to: self.rule) + " "
            + (self.result > 0 ? result.fitted(to: self.result) + " " : "") + text.fitted(to: self.text)
    }
}
