#!/bin/bash
# tests/browser.sh — the front desk's page end to end in a real browser: Debian's chromium,
# headless, driven by playwright-core (from npm, into a cache directory), against two
# workstations' `replica serve --http` whose nodes sync on 127.0.0.1.
#   (a) the page opens on Today on both, with the status line naming the other workstation
#   (b) signed in on A, a booking made in A's page shows in B's page within 2 s
#   (c) checked in on B's page, A's page shows it arrived; Patients finds a name
#   (d) a conflict made before the nodes meet: Review on A shows both values and who wrote
#       them; keeping one there resolves it on B's page too; no script error on either page
# The screenshot of A's Today is kept as $top_builddir/frontdesk-today.png (the artifact).
# Skips (exit 77), saying why, without chromium, node or npm, or when playwright-core cannot
# be installed. CHROMIUM overrides /usr/bin/chromium; FRONTDESK_NPM_DIR the npm directory
# (default $top_builddir/.browser-test).
#
# Standalone (from the build directory): REPLICA=clients/replica bash ../tests/browser.sh
set -u

REPLICA=${REPLICA:-clients/replica}
OUT=${top_builddir:-.}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
NPM_DIR=${FRONTDESK_NPM_DIR:-$OUT/.browser-test}
[ -x "$CHROMIUM" ] || { echo "no chromium at $CHROMIUM (apt-get install chromium): skipped"; exit 77; }
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
    { echo "node and npm are needed (apt-get install nodejs npm): skipped"; exit 77; }
command -v curl >/dev/null 2>&1 || { echo "curl not found: skipped"; exit 77; }
if [ ! -d "$NPM_DIR/node_modules/playwright-core" ]; then
    mkdir -p "$NPM_DIR"
    if ! npm install --prefix "$NPM_DIR" --no-audit --no-fund --silent playwright-core@1 \
        >"$NPM_DIR/install.log" 2>&1; then
        echo "npm could not install playwright-core (see $NPM_DIR/install.log): skipped"
        exit 77
    fi
fi
. "$(dirname "${BASH_SOURCE[0]}")/netlib.sh"

for n in A B; do PORT[$n]=$(free_port); done
HA=$(free_port)
HB=$(free_port)
r --dir "$T/A" init --office "Browser Test" --device desk-a --listen "tcp://127.0.0.1:${PORT[A]}" >/dev/null
code=$(r --dir "$T/A" invite --file "$T/b.prov" --device desk-b 2>/dev/null | tail -n 1)
r --dir "$T/B" init --from "$T/b.prov" --code "$code" --listen "tcp://127.0.0.1:${PORT[B]}" \
    >/dev/null 2>&1
echo 2468 | r --dir "$T/A" staff add ana >/dev/null
echo 1357 | r --dir "$T/A" staff add ben >/dev/null
r --dir "$T/A" put patients/4410 name="Ana María Ruiz" dob=1980-02-03 phone=555-0101 --user setup >/dev/null
r --dir "$T/A" put patients/4411 name="Ben Okafor" dob=1975-11-30 phone=555-0102 --user setup >/dev/null
r --dir "$T/A" put appts/2026-03-02-0900-4411 patient=4411 provider="Dr. Lee" reason=flu status=booked \
    --user setup >/dev/null
# a conflict for the Review view: B and A change one phone number before their nodes meet
r --dir "$T/A" export -o "$T/a.bundle" 2>/dev/null && r --dir "$T/B" import "$T/a.bundle" >/dev/null
r --dir "$T/B" put patients/4411 phone=555-9999 --user bob >/dev/null
r --dir "$T/A" put patients/4411 phone=555-1111 --user setup >/dev/null
start_node A --no-discovery --listen "tcp://127.0.0.1:${PORT[A]}" --http "127.0.0.1:$HA"
start_node B --no-discovery --listen "tcp://127.0.0.1:${PORT[B]}" --peer "tcp://127.0.0.1:${PORT[A]}" \
    --http "127.0.0.1:$HB"
check "the two nodes connect" wait_connected 15 1 A B
check "B has A's data" appears B patients/4410 name 15

cat >"$T/e2e.js" <<'EOF'
// argv: playwright-core dir, chromium, URL of A, URL of B, screenshot path
const [pwdir, chromium, urlA, urlB, shot] = process.argv.slice(2);
const { chromium: browserType } = require(pwdir + '/node_modules/playwright-core');
const results = [];
const check = (ok, what, detail) => results.push({ ok: !!ok, what, detail: detail || '' });

(async () => {
  const browser = await browserType.launch({
    executablePath: chromium,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const errors = [];
  const open = async (url) => {
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 720 } });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => errors.push(url + ': ' + e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(url + ': ' + m.text()); });
    await page.goto(url);
    return page;
  };
  try {
    const a = await open(urlA), b = await open(urlB);
    for (const [name, p] of [['A', a], ['B', b]]) {
      await p.fill('#today-date', '2026-03-02');
      await p.dispatchEvent('#today-date', 'change');
      await p.waitForSelector('#today-rows tr', { timeout: 5000 });
      check(await p.isVisible('#view-today'), name + ': the page opens on Today');
    }
    await a.waitForFunction(() => /desk-b/.test(document.getElementById('status').textContent), null, { timeout: 10000 });
    check(true, 'A: the status line names desk-b');
    await a.fill('#signin-name', 'ana');
    await a.fill('#signin-pin', '2468');
    await a.click('#signin-form button[type=submit]');
    await a.waitForFunction(() => /ana/.test(document.getElementById('who').textContent), null, { timeout: 5000 });
    check(true, 'A: signed in as ana');
    await a.fill('#book-time', '10:15');
    await a.fill('#book-patient', '4410');
    await a.fill('#book-provider', 'Dr. Lee');
    await a.fill('#book-reason', 'follow-up');
    const booked = a.waitForResponse((r) => r.url().endsWith('/api/appts') && r.request().method() === 'POST');
    await a.click('#book-form button[type=submit]');
    const resp = await booked;
    const t0 = Date.now();
    check(resp.status() === 201, 'A: the booking is accepted (201)', 'status ' + resp.status());
    let seen = -1;
    try {
      await b.waitForSelector('#today-rows tr[data-id="2026-03-02-1015-4410"]', { timeout: 2000 });
      seen = Date.now() - t0;
    } catch (e) { /* seen stays -1 */ }
    check(seen >= 0, 'B: the booking made on A shows within 2 s', seen >= 0 ? seen + ' ms' : 'not within 2 s');
    const row = await b.textContent('#today-rows tr[data-id="2026-03-02-1015-4410"]').catch(() => '');
    check(/Ana María Ruiz/.test(row) && /booked/.test(row), 'B: the row has the patient name and status', row);
    await a.waitForSelector('#today-rows tr[data-id="2026-03-02-1015-4410"]', { timeout: 3000 });
    await a.screenshot({ path: shot, fullPage: true });
    // B checks the patient in, as ben
    await b.fill('#signin-name', 'ben');
    await b.fill('#signin-pin', '1357');
    await b.click('#signin-form button[type=submit]');
    await b.waitForFunction(() => /ben/.test(document.getElementById('who').textContent), null, { timeout: 5000 });
    await b.click('#today-rows tr[data-id="2026-03-02-1015-4410"] button:has-text("Check in")');
    try {
      await a.waitForSelector('#today-rows tr.arrived[data-id="2026-03-02-1015-4410"]', { timeout: 4000 });
      check(true, 'A: the check-in made on B shows');
    } catch (e) { check(false, 'A: the check-in made on B shows', e.message); }
    await a.click('button[data-view="patients"]');
    await a.fill('#pt-q', 'okaf');
    await a.waitForFunction(() => /Ben Okafor/.test(document.getElementById('pt-rows').textContent), null, { timeout: 3000 })
      .then(() => check(true, 'A: Patients finds "okaf"'), (e) => check(false, 'A: Patients finds "okaf"', e.message));
    // Review: the two phone numbers, with who wrote each; keep bob's on A, B sees it resolved
    await a.click('button[data-view="review"]');
    await b.click('button[data-view="review"]');
    await a.waitForSelector('.conflict li:has-text("555-9999")', { timeout: 5000 });
    const vals = await a.textContent('#rv-list');
    check(/555-9999/.test(vals) && /by bob/.test(vals) && /555-1111/.test(vals) && /by setup/.test(vals),
      'A: Review shows both values with who wrote each', vals);
    await b.waitForSelector('.conflict li:has-text("555-9999")', { timeout: 5000 });
    await a.click('.conflict li:has-text("555-9999") button');
    try {
      await b.waitForSelector('#rv-empty:not([hidden])', { timeout: 4000 });
      check(true, 'B: the pick made on A resolves the conflict there too');
    } catch (e) { check(false, 'B: the pick made on A resolves the conflict there too', e.message); }
    await b.click('button[data-view="patients"]');
    await b.fill('#pt-q', 'okafor');
    await b.waitForFunction(() => /555-9999/.test(document.getElementById('pt-rows').textContent), null, { timeout: 3000 })
      .then(() => check(true, 'B: the kept phone number is the patient\'s'), (e) => check(false, 'B: the kept phone number is the patient\'s', e.message));
  } catch (e) {
    check(false, 'the browser run', e.stack);
  }
  check(errors.length === 0, 'no script error on either page', errors.join(' | '));
  await browser.close();
  for (const r of results) console.log((r.ok ? 'ok - ' : 'not ok - ') + r.what + (r.detail ? ' (' + r.detail.replace(/\n/g, ' ') + ')' : ''));
})();
EOF
timeout -s KILL 90 node "$T/e2e.js" "$(cd "$NPM_DIR" && pwd)" "$CHROMIUM" "http://127.0.0.1:$HA/" \
    "http://127.0.0.1:$HB/" "$OUT/frontdesk-today.png" >"$T/e2e.out" 2>&1
while IFS= read -r line; do
    case $line in
    "ok - "*) ok "${line#ok - }" ;;
    "not ok - "*) notok "${line#not ok - }" ;;
    *) echo "# $line" ;;
    esac
done <"$T/e2e.out"
check "the browser run reported" grep -q '^ok - B: the booking made on A shows within 2 s' "$T/e2e.out"
check "the screenshot of Today is kept: $OUT/frontdesk-today.png" [ -s "$OUT/frontdesk-today.png" ]
stop A
stop B
finish
