// Drives the centre's dashboard in Debian's Chromium (headless, through
// playwright-core): a wrong TOTP refused, sign-in with the right one, the
// KPIs as the page shows them, a POST without the CSRF header refused, a
// member looked up and blocked after the confirmation, a screenshot.
// Prints what it saw as one JSON line for tests/dashboard/test_browser.py,
// which checks it against the command line and the tills.
//
//   node browser.cjs URL USER PASSWORD TOTP_SECRET CARD SCREENSHOT.png
"use strict";

const crypto = require("crypto");
const { chromium } = require("playwright-core");

const [url, user, password, secret, card, screenshot] = process.argv.slice(2);

function base32(text) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	let bits = 0, value = 0;
	const out = [];
	for (const ch of text.replace(/=+$/, "")) {
		value = (value << 5) | alphabet.indexOf(ch);
		bits += 5;
		if (bits >= 8) {
			out.push((value >>> (bits - 8)) & 255);
			bits -= 8;
		}
	}
	return Buffer.from(out);
}

// RFC 6238 at the centre's clock (LOYALTY_CLOCK_OFFSET_S, as every program
// the tests start follows it).
function totp(at) {
	const counter = Buffer.alloc(8);
	counter.writeBigUInt64BE(BigInt(Math.floor(at / 30)));
	const mac = crypto.createHmac("sha1", base32(secret)).update(counter).digest();
	const o = mac[19] & 15;
	return String((mac.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, "0");
}
const now = () => Date.now() / 1000 + Number(process.env.LOYALTY_CLOCK_OFFSET_S || 0);

(async () => {
	const browser = await chromium.launch({
		executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
		args: ["--no-sandbox"],
	});
	const seen = {};
	try {
		// The test PKI's CA is no browser's: its certificate is accepted
		// for this context only.
		const context = await browser.newContext({ ignoreHTTPSErrors: true });
		const page = await context.newPage();
		page.on("dialog", (d) => d.accept());
		await page.goto(url);
		const good = totp(now());
		await page.fill("#login-user", user);
		await page.fill("#login-password", password);
		await page.fill("#login-totp", good === "000000" ? "000001" : "000000");
		await page.click("#login-submit");
		await page.waitForFunction(() => document.getElementById("login-error").textContent !== "");
		seen.wrong_totp = await page.textContent("#login-error");
		seen.app_hidden_after_wrong = await page.isHidden("#app");
		await page.fill("#login-totp", good);
		await page.click("#login-submit");
		await page.waitForSelector("body[data-ready=true]", { timeout: 20000 });
		seen.kpis = {};
		for (const el of await page.$$("#kpis .kpi")) {
			const name = await el.getAttribute("data-kpi");
			seen.kpis[name] = await el.$eval("b", (b) => b.textContent);
		}
		seen.chart = await page.evaluate(() => {
			const c = document.getElementById("chart-days");
			return typeof Chart !== "undefined" && Chart.getChart(c) !== undefined;
		});
		// The session's cookie is sent, the CSRF header is not: refused.
		seen.csrf_less = await page.evaluate(async (scan) => {
			const r = await fetch("/api/block", { method: "POST", credentials: "same-origin",
				headers: { "Content-Type": "application/json" }, body: JSON.stringify({ card: scan }) });
			return r.status;
		}, card);
		await page.fill("#member-card", card);
		await page.click("#member-find");
		await page.waitForSelector("#member:not(.hidden)");
		seen.member_before = await page.textContent("#member-summary");
		await page.click("#member-block");
		await page.waitForFunction(() => document.getElementById("member-summary").dataset.blocked === "true");
		seen.member_after = await page.textContent("#member-summary");
		seen.audit_first = await page.textContent("#audit tbody tr:first-child");
		await page.screenshot({ path: screenshot, fullPage: true });
	} finally {
		await browser.close();
	}
	process.stdout.write(JSON.stringify(seen) + "\n");
})().catch((e) => {
	process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
	process.exit(1);
});
