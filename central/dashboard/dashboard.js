// The back office's page: signs in, then shows the report's KPIs (a chart
// of the days, campaigns, stores), a member looked up by card, the fraud
// flags and the audit log, all from the centre's /api/. Actions send the
// session's CSRF token and ask for confirmation first.
"use strict";

let csrf = null;
let chart = null;
const $ = (id) => document.getElementById(id);

function cell(text, num) {
	const td = document.createElement("td");
	td.textContent = text === null || text === undefined ? "" : String(text);
	if (num) td.className = "num";
	return td;
}

function fill(tableId, rows) {
	const body = $(tableId).querySelector("tbody");
	body.replaceChildren();
	for (const r of rows) {
		const tr = document.createElement("tr");
		for (const [text, num] of r) tr.appendChild(cell(text, num));
		body.appendChild(tr);
	}
}

async function api(path, options) {
	const o = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
	if (o.method === "POST") {
		o.headers["Content-Type"] = "application/json";
		if (csrf) o.headers["X-CSRF-Token"] = csrf;
	}
	const r = await fetch(path, o);
	let body = null;
	try { body = await r.json(); } catch (e) { body = null; }
	if (r.status === 401 && path !== "/api/login") signedOut();
	if (!r.ok) throw new Error((body && body.error && body.error.message) || ("HTTP " + r.status));
	return body;
}

function signedOut() {
	csrf = null;
	$("app").classList.add("hidden");
	$("signin").classList.remove("hidden");
	$("who").textContent = "";
}

function money(minor) { return (minor / 100).toFixed(2); }
function pct(bp) { return (bp / 100).toFixed(2) + " %"; }

async function showReport() {
	const q = new URLSearchParams();
	if ($("filter-from").value) q.set("from", $("filter-from").value);
	if ($("filter-until").value) q.set("until", $("filter-until").value);
	if ($("filter-store").value) q.set("store", $("filter-store").value);
	const r = await api("/api/report?" + q.toString());
	const kpis = [
		["Members", r.members], ["Active members", r.active_members], ["New members", r.new_members],
		["Points issued", r.points_issued], ["Points redeemed", r.points_redeemed],
		["Points expired", r.points_expired], ["Points donated", r.points_donated],
		["Points outstanding", r.points_outstanding], ["Liability", money(r.liability)],
		["Redemption rate", pct(r.redemption_rate_bp)], ["Breakage", pct(r.breakage_bp)],
		["Repeat rate", pct(r.repeat_rate_bp)], ["Receipts", r.receipts],
		["Average basket", money(r.average_basket)],
	];
	const box = $("kpis");
	box.replaceChildren();
	for (const [name, value] of kpis) {
		const d = document.createElement("div");
		d.className = "kpi";
		d.dataset.kpi = name;
		const b = document.createElement("b");
		b.textContent = String(value);
		d.append(b, document.createTextNode(name));
		box.appendChild(d);
	}
	fill("campaigns", r.campaigns.map((c) => [[c.id], [c.points, true], [money(c.spend), true]]));
	fill("stores", r.stores.map((s) => [[s.store], [s.points_issued, true], [s.points_redeemed, true],
		[s.points_expired, true], [s.points_outstanding, true]]));
	const labels = r.days.map((d) => d.date);
	const data = {
		labels,
		datasets: [
			{ label: "Points issued", data: r.days.map((d) => d.points_issued), borderColor: "#2a6fdb", backgroundColor: "#2a6fdb" },
			{ label: "Points redeemed", data: r.days.map((d) => d.points_redeemed), borderColor: "#d9822b", backgroundColor: "#d9822b" },
		],
	};
	if (typeof Chart === "undefined") return;
	if (chart) { chart.data = data; chart.update(); return; }
	chart = new Chart($("chart-days"), { type: "line", data, options: { animation: false } });
}

async function showFraud() {
	const f = await api("/api/fraud");
	fill("fraud", f.flags.map((x) => [[x.first_seen], [x.card], [x.rule], [x.detail]]));
}

async function showAudit() {
	const a = await api("/api/audit");
	fill("audit", a.entries.map((x) => [[x.at], [x.user], [x.action], [x.detail]]));
}

async function showMember() {
	$("member-error").textContent = "";
	try {
		const m = await api("/api/member?card=" + encodeURIComponent($("member-card").value));
		$("member").classList.remove("hidden");
		if (!m.known) {
			$("member-summary").textContent = m.card + ": not a member";
			fill("member-history", []);
			return;
		}
		const membership = m.membership ? ", membership " + m.membership.id + " until " + m.membership.until : "";
		const stamps = Object.entries(m.stamps).map(([k, v]) => k + " " + v).join(", ");
		$("member-summary").textContent = m.card + ": balance " + m.balance + ", tier " + (m.tier || "-") +
			(m.blocked ? ", BLOCKED" : "") + membership + (stamps ? ", stamps " + stamps : "") +
			(m.segments.length ? ", segments " + m.segments.join(" ") : "") +
			(m.referral ? ", referred by " + m.referral.referrer + " (" + m.referral.status + ")" : "");
		$("member-summary").dataset.blocked = String(m.blocked);
		fill("member-history", m.history.map((h) => [[h.at], [h.kind], [h.terminal], [h.receipt], [h.points, true]]));
	} catch (e) {
		$("member-error").textContent = e.message;
	}
}

async function setBlocked(block) {
	const card = $("member-card").value;
	if (!window.confirm((block ? "Block" : "Unblock") + " this card? The tills learn it at their next sync.")) return;
	try {
		await api(block ? "/api/block" : "/api/unblock", { method: "POST", body: JSON.stringify({ card }) });
		await showMember();
		await showAudit();
	} catch (e) {
		$("member-error").textContent = e.message;
	}
}

async function setSegment(add) {
	const card = $("member-card").value, segment = $("segment-name").value;
	if (!segment) return;
	if (!window.confirm((add ? "Add this card to " : "Remove this card from ") + segment + "?")) return;
	try {
		await api("/api/segment", { method: "POST", body: JSON.stringify({ card, segment, action: add ? "add" : "remove" }) });
		await showMember();
		await showAudit();
	} catch (e) {
		$("member-error").textContent = e.message;
	}
}

async function publishProgram() {
	$("program-result").textContent = "";
	let document_;
	try {
		document_ = JSON.parse($("program-document").value);
	} catch (e) {
		$("program-result").textContent = "not JSON: " + e.message;
		return;
	}
	if (!window.confirm("Publish " + document_.program + " version " + document_.version + " to every till?")) return;
	try {
		const r = await api("/api/program", { method: "POST", body: JSON.stringify({ document: document_ }) });
		$("program-result").textContent = r.program + " version " + r.version +
			(r.published ? " published" : " was published already");
		await showAudit();
	} catch (e) {
		$("program-result").textContent = e.message;
	}
}

async function signedIn(who) {
	csrf = who.csrf;
	$("who").textContent = who.user + " (" + who.role + ")";
	$("signin").classList.add("hidden");
	$("app").classList.remove("hidden");
	$("member-block").disabled = who.role !== "manager";
	$("member-unblock").disabled = who.role !== "manager";
	for (const id of ["segment-add", "segment-remove", "program-publish"]) $(id).disabled = who.role !== "manager";
	await Promise.all([showReport(), showFraud(), showAudit()]);
	document.body.dataset.ready = "true";
}

$("login-form").addEventListener("submit", async (ev) => {
	ev.preventDefault();
	$("login-error").textContent = "";
	try {
		const who = await api("/api/login", { method: "POST", body: JSON.stringify({
			user: $("login-user").value, password: $("login-password").value, totp: $("login-totp").value }) });
		await signedIn(who);
	} catch (e) {
		$("login-error").textContent = e.message;
	}
});
$("filter-form").addEventListener("submit", (ev) => { ev.preventDefault(); showReport(); });
$("member-form").addEventListener("submit", (ev) => { ev.preventDefault(); showMember(); });
$("member-block").addEventListener("click", () => setBlocked(true));
$("member-unblock").addEventListener("click", () => setBlocked(false));
$("segment-form").addEventListener("submit", (ev) => { ev.preventDefault(); setSegment(true); });
$("segment-remove").addEventListener("click", () => setSegment(false));
$("program-form").addEventListener("submit", (ev) => { ev.preventDefault(); publishProgram(); });
api("/api/session").then(signedIn).catch(() => {});
