// The alert e-mail: subject, plain text and a simple HTML part (inline styles only, no external
// images or fonts). Says what happened, on which server, from where, when, how often, the
// evidence and what to do. Everything put into HTML is escaped; attacker-chosen text (role and
// application names, evidence) is cleaned of control characters first.
import { cleanBlock, cleanLine, evidenceLabel, evidenceText, maskSecrets, safeLink } from './evidence.js';
import type { AlertForDelivery } from './types.js';

export interface AlertEmail {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

const MAX_EVIDENCE_ROWS = 30;

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** `[pgwarden] High: Successful login after brute force on server orders` */
export function alertSubject(alert: AlertForDelivery): string {
  return cleanLine(`[pgwarden] ${alert.severity}: ${alert.title}`, 200);
}

/** "2024-05-01 12:00:03 UTC", or the input cleaned when it is not a date. */
export function displayTime(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return cleanLine(iso, 40);
  return new Date(t)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC')
    .replace(/Z$/, ' UTC');
}

interface Row {
  readonly label: string;
  readonly value: string;
}

/** "203.0.113.7, country DE, network AS64500 Example Hosting (hosting)" */
export function sourceText(alert: AlertForDelivery): string {
  const parts: string[] = [alert.sourceAddress ? cleanLine(alert.sourceAddress, 100) : 'unknown address'];
  const loc = alert.location;
  if (loc) {
    if (loc.country) parts.push(`country ${cleanLine(loc.country, 60)}`);
    const net = [loc.asn !== null ? `AS${loc.asn}` : '', loc.organization ? cleanLine(loc.organization, 120) : ''].filter(Boolean).join(' ');
    if (net) parts.push(`network ${net}${loc.kind ? ` (${cleanLine(loc.kind, 40)})` : ''}`);
    else if (loc.kind) parts.push(`network kind ${cleanLine(loc.kind, 40)}`);
  }
  return parts.join(', ');
}

function whenText(alert: AlertForDelivery): string {
  const first = displayTime(alert.firstSeen);
  const last = displayTime(alert.lastSeen);
  return first === last ? first : `from ${first} to ${last}`;
}

function summaryRows(alert: AlertForDelivery): Row[] {
  return [
    { label: 'Server', value: cleanLine(alert.server, 100) },
    { label: 'Severity', value: alert.severity },
    { label: 'Alert type', value: cleanLine(alert.type, 60) },
    { label: 'MITRE ATT&CK tactic', value: cleanLine(alert.tactic, 80) },
    { label: 'Principal', value: alert.principal === null ? 'unknown' : cleanLine(alert.principal, 200) },
    { label: 'Source', value: sourceText(alert) },
    { label: 'When', value: whenText(alert) },
    { label: 'Times seen', value: String(alert.count) },
  ];
}

function evidenceRows(alert: AlertForDelivery): Row[] {
  const masked = maskSecrets(alert.evidence) as Record<string, unknown>;
  const entries = Object.entries(masked ?? {});
  const rows = entries.slice(0, MAX_EVIDENCE_ROWS).map(([k, v]) => ({ label: evidenceLabel(k), value: evidenceText(v) }));
  if (entries.length > MAX_EVIDENCE_ROWS) rows.push({ label: '…', value: `${entries.length - MAX_EVIDENCE_ROWS} more items in the console` });
  return rows;
}

export function renderAlertEmail(alert: AlertForDelivery): AlertEmail {
  const subject = alertSubject(alert);
  const title = cleanLine(alert.title, 200);
  const description = cleanBlock(alert.description);
  const action = cleanBlock(alert.recommendedAction);
  const summary = summaryRows(alert);
  const evidence = evidenceRows(alert);
  const link = safeLink(alert.consoleUrl);
  const id = cleanLine(alert.id, 80);

  const width = Math.max(...summary.map((r) => r.label.length)) + 2;
  const text = [
    `${alert.severity} severity alert: ${title}`,
    '',
    description,
    '',
    ...summary.map((r) => `${`${r.label}:`.padEnd(width)}${r.value}`),
    '',
    'Evidence',
    ...(evidence.length ? evidence.map((r) => `  ${r.label}: ${r.value}`) : ['  none recorded']),
    '',
    'What to do',
    action,
    '',
    ...(link ? [`Open the alert in the console: ${link}`] : []),
    `Alert id: ${id}`,
    '',
    '-- ',
    "Sent by pgwarden threat protection to the addresses in this server's security alert policy.",
    '',
  ].join('\n');

  const color = { High: '#b42318', Medium: '#b54708', Low: '#175cd3' }[alert.severity] ?? '#344054';
  const e = escapeHtml;
  const td = 'padding:4px 12px 4px 0;vertical-align:top;';
  const tableRows = (rows: readonly Row[]): string =>
    rows
      .map((r) => `<tr><td style="${td}color:#475467;white-space:nowrap">${e(r.label)}</td><td style="${td}color:#101828">${e(r.value)}</td></tr>`)
      .join('\n');
  const paragraphs = (s: string): string =>
    s
      .split(/\n{2,}/)
      .map((p) => `<p style="margin:0 0 12px 0">${e(p).replace(/\n/g, '<br>')}</p>`)
      .join('\n');
  const html = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${e(subject)}</title></head>
<body style="margin:0;padding:16px;background:#ffffff;font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.45;color:#101828">
<div style="max-width:680px">
<p style="margin:0 0 8px 0"><span style="display:inline-block;padding:2px 8px;border-radius:4px;background:${color};color:#ffffff;font-weight:bold">${e(alert.severity)}</span> <span style="color:#475467">pgwarden threat protection</span></p>
<h1 style="margin:0 0 12px 0;font-size:20px;color:#101828">${e(title)}</h1>
${paragraphs(description)}
<table style="border-collapse:collapse;margin:0 0 16px 0">
${tableRows(summary)}
</table>
<h2 style="margin:0 0 8px 0;font-size:16px">Evidence</h2>
${evidence.length ? `<table style="border-collapse:collapse;margin:0 0 16px 0;font-family:Consolas,Menlo,monospace;font-size:13px">\n${tableRows(evidence)}\n</table>` : '<p style="margin:0 0 16px 0;color:#475467">None recorded.</p>'}
<h2 style="margin:0 0 8px 0;font-size:16px">What to do</h2>
<div style="margin:0 0 16px 0;padding:8px 12px;border-left:4px solid ${color};background:#f9fafb">${paragraphs(action)}</div>
${link ? `<p style="margin:0 0 12px 0"><a href="${e(link)}" style="color:#175cd3">Open the alert in the console</a></p>\n` : ''}<p style="margin:0;color:#667085;font-size:12px">Alert id ${e(id)}. Sent by pgwarden threat protection to the addresses in this server's security alert policy.</p>
</div>
</body></html>
`;
  return { subject, text, html };
}
