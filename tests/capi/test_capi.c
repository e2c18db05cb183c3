/*
 * test_capi.c - the public C API from C: version, status names and kinds,
 * program loading and its errors, card checks, checkout, declines, refund;
 * a terminal opened on a HAL of its own (a key store in memory, a clock);
 * the terminal's error message and result after failures and successes;
 * its UTC offset in a named zone, a fixed one and the system's.
 * Built twice: against the build tree, and against an installed prefix
 * through find_package(loyalty) and pkg-config (tests/install).
 *
 *   test_capi PROGRAM.json
 */
#define _XOPEN_SOURCE 700
#include <loyalty/hal.h>
#include <loyalty/loyalty.h>

#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (cond) {                                                          \
			passed++;                                                    \
		} else {                                                             \
			failed++;                                                    \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
				#cond);                                              \
		}                                                                    \
	} while (0)

#define CHECK_STATUS(expr, want)                                                     \
	do {                                                                         \
		loy_status got_ = (expr);                                            \
		if (got_ == (want)) {                                                \
			passed++;                                                    \
		} else {                                                             \
			failed++;                                                    \
			fprintf(stderr, "%s:%d: %s gave %s, want %s (%s)\n", __FILE__, \
				__LINE__, #expr, loy_errstr(got_), loy_errstr(want),   \
				loy_engine_errmsg(e));                               \
		}                                                                    \
	} while (0)

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static const char basket[] =
	"{\"receipt_id\":\"R-1\",\"at\":\"2026-11-24T10:15:00+01:00\",\"lines\":["
	"{\"sku\":\"COF-01\",\"category\":\"coffee\",\"qty\":2,\"unit_price\":350},"
	"{\"sku\":\"TAB-07\",\"category\":\"tobacco\",\"qty\":1,\"unit_price\":890}]}";

/* A key store in memory, as a terminal without a file system for secrets
 * (a secure element, a TPM) would bring. */
struct mem_item {
	char name[LOY_HAL_KEY_NAME_MAX];
	unsigned char data[8192];
	size_t len;
};
struct mem_store {
	struct mem_item items[8];
	int count;
	int puts;
};

static struct mem_item *mem_find(struct mem_store *m, const char *name)
{
	for (int i = 0; i < m->count; i++)
		if (strcmp(m->items[i].name, name) == 0)
			return &m->items[i];
	return NULL;
}

static int mem_get(void *ctx, const char *name, unsigned char *buf, size_t size, size_t *len)
{
	struct mem_item *it = mem_find(ctx, name);
	if (!it)
		return LOY_HAL_E_NOT_FOUND;
	*len = it->len;
	if (size < it->len)
		return LOY_HAL_E_TOO_BIG;
	memcpy(buf, it->data, it->len);
	return 0;
}

static int mem_put(void *ctx, const char *name, const unsigned char *data, size_t len)
{
	struct mem_store *m = ctx;
	struct mem_item *it = mem_find(m, name);
	if (!it) {
		if (m->count == 8 || strlen(name) >= LOY_HAL_KEY_NAME_MAX)
			return LOY_HAL_E_IO;
		it = &m->items[m->count++];
		strcpy(it->name, name);
	}
	if (len > sizeof it->data)
		return LOY_HAL_E_ARGUMENT;
	memcpy(it->data, data, len);
	it->len = len;
	m->puts++;
	return 0;
}

static int mem_erase(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return LOY_HAL_E_UNSUPPORTED;
}

static int64_t fixed_wall(void *ctx) { return *(const int64_t *)ctx; }
static int64_t zero_monotonic(void *ctx)
{
	(void)ctx;
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* The terminal on a HAL: its keys where the HAL keeps them, not in the data
 * dir; a bad table refused at open. */
static void terminal_on_hal(const char *program, size_t plen)
{
	char dir[] = "/tmp/loyalty-capi-XXXXXX";
	if (!mkdtemp(dir)) {
		failed++;
		return;
	}
	char data[64], path[128];
	snprintf(data, sizeof data, "%s/T1", dir);
	static struct mem_store store;
	int64_t wall = INT64_C(1795000000000); /* 2026-11-18 */
	loy_hal_keystore keys = {LOY_HAL_KEYSTORE_VERSION, &store, mem_get, mem_put, mem_erase};
	loy_hal_clock clock = {LOY_HAL_CLOCK_VERSION, &wall, fixed_wall, zero_monotonic};
	loy_hal hal = {LOY_HAL_VERSION, &clock, NULL, NULL, &keys, NULL};
	loy_hal_keystore broken = keys;
	broken.version = 0;
	loy_hal bad = hal;
	bad.keys = &broken;
	loy_terminal_setup setup = LOY_INIT(loy_terminal_setup);
	setup.terminal_id = "T1";
	setup.store = "S1";
	setup.tz = "+01:00";

	loy_terminal *t = NULL;
	CHECK(loy_terminal_new(&t) == LOY_OK && t != NULL);
	CHECK(loy_terminal_new(NULL) == LOY_E_BAD_ARGUMENT);
	/* A setup whose size was left 0 is no setup of this library. */
	loy_terminal_setup unsized = setup;
	unsized.size = 0;
	CHECK(loy_terminal_init_hal(t, data, &unsized, &hal) == LOY_E_BAD_ARGUMENT);
	CHECK(strstr(loy_terminal_errmsg(t), "LOY_INIT(loy_terminal_setup)") != NULL);
	CHECK(loy_terminal_init_hal(t, data, &setup, &bad) == LOY_E_BAD_ARGUMENT);
	CHECK(strstr(loy_terminal_errmsg(t), "hal: keys: version below 1") != NULL);
	CHECK(loy_terminal_init_hal(t, data, &setup, &hal) == LOY_OK);
	CHECK(store.puts == 4); /* the two keys, the mark that the ledger is sealed, the empty anchor */
	CHECK(mem_find(&store, "ledger.anchor") != NULL);
	CHECK(mem_find(&store, "ledger.sealed") != NULL);
	CHECK(mem_find(&store, "ledger.key") && mem_find(&store, "ledger.key")->len == LOY_HAL_KEY_BYTES);
	CHECK(mem_find(&store, "token.key") != NULL);
	snprintf(path, sizeof path, "%s/ledger.key", data);
	CHECK(access(path, F_OK) != 0);
	CHECK(loy_terminal_program_load(t, program, plen) == LOY_OK);
	CHECK(loy_terminal_checkout(t, "6280001234567895", basket, sizeof basket - 1, NULL) == LOY_OK);
	CHECK(strstr(loy_terminal_result_json(t), "\"earned\":14") != NULL);
	loy_terminal_free(t);

	/* Without its key store the data dir is not enough to open it. */
	CHECK(loy_terminal_new(&t) == LOY_OK);
	CHECK(loy_terminal_open(t, data) == LOY_E_STORAGE);
	CHECK(strstr(loy_terminal_errmsg(t), "ledger.key is missing") != NULL);
	CHECK(loy_terminal_open_hal(t, data, &hal) == LOY_OK);
	int ok = 0;
	CHECK(loy_terminal_verify(t, &ok) == LOY_OK && ok == 1);
	loy_terminal_free(t);
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh terminal T1 of store S1 in a new temporary dir (its path in dir),
 * zone tz (NULL: none), with the program installed when one is given. */
static loy_terminal *temp_terminal(char *dir, const char *tz, const char *program, size_t plen)
{
	if (!mkdtemp(dir)) {
		failed++;
		return NULL;
	}
	char data[64];
	snprintf(data, sizeof data, "%s/T1", dir);
	loy_terminal_setup setup = LOY_INIT(loy_terminal_setup);
	setup.terminal_id = "T1";
	setup.store = "S1";
	setup.tz = tz;
	loy_terminal *t = NULL;
	CHECK(loy_terminal_new(&t) == LOY_OK);
	CHECK(loy_terminal_init(t, data, &setup) == LOY_OK);
	if (program)
		CHECK(loy_terminal_program_load(t, program, plen) == LOY_OK);
	return t;
}

/* Every call sets or clears the handle's message; a failure leaves the
 * last successful result as it was (loyalty.h). */
static void terminal_errors_and_results(const char *program, size_t plen)
{
	loy_terminal *t = NULL;
	CHECK(loy_terminal_new(&t) == LOY_OK);
	CHECK(strcmp(loy_terminal_result_json(t), "") == 0);
	CHECK(loy_terminal_status(t) == LOY_E_BAD_ARGUMENT);
	CHECK(strstr(loy_terminal_errmsg(t), "not open") != NULL);
	/* No handle: refused before the lines are read. */
	CHECK(loy_terminal_refund(NULL, "R-1", NULL, 1) == LOY_E_BAD_ARGUMENT);
	CHECK(strcmp(loy_terminal_result_json(t), "") == 0);
	loy_terminal_free(t);

	char dir[] = "/tmp/loyalty-capi-XXXXXX";
	t = temp_terminal(dir, NULL, program, plen);
	if (!t)
		return;
	/* A failure, then a success: the message is cleared. */
	CHECK(loy_terminal_balance(t, "6280001234567896") == LOY_E_BAD_CARD);
	CHECK(strcmp(loy_terminal_errmsg(t), "") != 0);
	CHECK(loy_terminal_status(t) == LOY_OK);
	CHECK(strcmp(loy_terminal_errmsg(t), "") == 0);
	/* A failure after a success: the message is set, the result is still
	 * the last successful operation's. */
	char status[1024];
	snprintf(status, sizeof status, "%s", loy_terminal_result_json(t));
	CHECK(strstr(status, "\"terminal_id\":\"T1\"") != NULL);
	CHECK(loy_terminal_checkout(t, "6280001234567896", basket, sizeof basket - 1, NULL) == LOY_E_BAD_CARD);
	CHECK(loy_terminal_errmsg(t)[0] != '\0');
	CHECK(strcmp(loy_terminal_result_json(t), status) == 0);
	CHECK(loy_terminal_enroll(t, NULL) == LOY_E_BAD_ARGUMENT);
	CHECK(strcmp(loy_terminal_result_json(t), status) == 0);
	/* A success after it replaces both. */
	CHECK(loy_terminal_enroll(t, "6280001234567895") == LOY_OK);
	CHECK(strcmp(loy_terminal_errmsg(t), "") == 0);
	CHECK(strcmp(loy_terminal_result_json(t), "{\"card\":\"****7895\",\"known\":true,\"enrolled\":true}") == 0);
	/* A setter succeeds too: it clears a failure's message. */
	CHECK(loy_terminal_balance(t, NULL) == LOY_E_BAD_ARGUMENT);
	CHECK(loy_terminal_errmsg(t)[0] != '\0');
	loy_terminal_set_sync_timeouts(t, 0, 0);
	CHECK(strcmp(loy_terminal_errmsg(t), "") == 0);
	CHECK(loy_terminal_balance(t, NULL) == LOY_E_BAD_ARGUMENT);
	loy_terminal_set_clock(t, NULL, NULL);
	CHECK(strcmp(loy_terminal_errmsg(t), "") == 0);
	loy_terminal_free(t);
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* loy_terminal_donate (since 1.1): a program of specification 2 with a
 * charity; the charity checked first, then the member as a redemption. */
static void terminal_donate(const char *program, size_t plen)
{
	static const char charity_program[] =
		"{\"program\":\"capi\",\"version\":1,\"spec\":2,\"currency\":\"EUR\","
		"\"card\":{\"check\":\"luhn\",\"min_length\":8,\"max_length\":19},"
		"\"earn\":{\"points\":1,\"per\":100},"
		"\"tiers\":[{\"name\":\"Member\",\"spend\":0,\"multiplier_pct\":100}],"
		"\"redeem\":{\"point_value\":1,\"min_points\":100,\"max_pct\":50,\"offline_daily_cap\":1000},"
		"\"charities\":[{\"id\":\"rc\",\"name\":\"Red Cross\"}]}";
	CHECK(strcmp(loy_errstr(LOY_E_UNKNOWN_CHARITY), "unknown_charity") == 0);
	CHECK(loy_status_kind(LOY_E_UNKNOWN_CHARITY) == LOY_KIND_BAD_INPUT);
	CHECK(loy_terminal_donate(NULL, "6280001234567895", "rc", 1) == LOY_E_BAD_ARGUMENT);

	/* The example program (specification 1) has no charities. */
	char dir1[] = "/tmp/loyalty-capi-XXXXXX";
	loy_terminal *t = temp_terminal(dir1, NULL, program, plen);
	if (!t)
		return;
	CHECK(loy_terminal_enroll(t, "6280001234567895") == LOY_OK);
	CHECK(loy_terminal_donate(t, "6280001234567895", "rc", 1) == LOY_E_UNKNOWN_CHARITY);
	CHECK(strstr(loy_terminal_errmsg(t), "\"rc\"") != NULL);
	loy_terminal_free(t);
	nftw(dir1, remove_one, 16, FTW_DEPTH | FTW_PHYS);

	char dir2[] = "/tmp/loyalty-capi-XXXXXX";
	t = temp_terminal(dir2, NULL, charity_program, sizeof charity_program - 1);
	if (!t)
		return;
	CHECK(loy_terminal_enroll(t, "6280001234567895") == LOY_OK);
	/* 2 × 3.50 of coffee (and the tobacco) earn 15 points. */
	CHECK(loy_terminal_checkout(t, "6280001234567895", basket, sizeof basket - 1, NULL) == LOY_OK);
	CHECK(loy_terminal_donate(t, "6280001234567895", NULL, 1) == LOY_E_BAD_ARGUMENT);
	CHECK(loy_terminal_donate(t, "6280001234567895", "rc", 0) == LOY_E_BAD_ARGUMENT);
	CHECK(loy_terminal_donate(t, "6280001234567895", "rc", 16) == LOY_D_INSUFFICIENT_POINTS);
	CHECK(loy_terminal_donate(t, "4539578763621486", "rc", 1) == LOY_D_BALANCE_UNKNOWN);
	/* No min_points for a gift: one point is enough. */
	CHECK(loy_terminal_donate(t, "6280001234567895", "rc", 1) == LOY_OK);
	CHECK(strcmp(loy_terminal_result_json(t),
		     "{\"card\":\"****7895\",\"charity\":\"rc\",\"points\":1,\"balance\":14}") == 0);
	loy_terminal_free(t);
	nftw(dir2, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* loy_terminal_enroll_referred (since 0.2): the referral is recorded with
 * the enrolment, and with a card known already; a referrer's scan that is no
 * card is refused naming it. */
static void terminal_enroll_referred(const char *program, size_t plen)
{
	CHECK(loy_terminal_enroll_referred(NULL, "6280001234567895", "4539578763621486") == LOY_E_BAD_ARGUMENT);
	char dir[] = "/tmp/loyalty-capi-XXXXXX";
	loy_terminal *t = temp_terminal(dir, NULL, program, plen);
	if (!t)
		return;
	CHECK(loy_terminal_enroll_referred(t, "6280001234567895", NULL) == LOY_E_BAD_ARGUMENT);
	CHECK(loy_terminal_enroll_referred(t, "6280001234567895", "12") == LOY_E_BAD_CARD);
	CHECK(strstr(loy_terminal_errmsg(t), "--referrer") != NULL);
	CHECK(loy_terminal_enroll_referred(t, "6280001234567895", "4539578763621486") == LOY_OK);
	CHECK(strstr(loy_terminal_result_json(t), "\"enrolled\":true") != NULL);
	CHECK(loy_terminal_enroll_referred(t, "6280001234567895", "4539578763621486") == LOY_OK);
	CHECK(strstr(loy_terminal_result_json(t), "\"enrolled\":false") != NULL);
	loy_terminal_free(t);
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* loy_terminal_utc_offset(): the terminal's zone at fixed instants. */
static void terminal_utc_offset(void)
{
	const int64_t jan = INT64_C(1768478400);      /* 2026-01-15T12:00:00Z */
	const int64_t jul = INT64_C(1784116800);      /* 2026-07-15T12:00:00Z */
	const int64_t before_dst = INT64_C(1774745999); /* 2026-03-29T00:59:59Z, 01:59:59 in Budapest */
	int32_t off = 1;

	loy_terminal *t = NULL;
	CHECK(loy_terminal_new(&t) == LOY_OK);
	CHECK(loy_terminal_utc_offset(t, jan, &off) == LOY_E_BAD_ARGUMENT); /* not open */
	CHECK(loy_terminal_utc_offset(NULL, jan, &off) == LOY_E_BAD_ARGUMENT);
	loy_terminal_free(t);

	char dir[] = "/tmp/loyalty-capi-XXXXXX";
	t = temp_terminal(dir, "Europe/Budapest", NULL, 0);
	if (t) {
		CHECK(loy_terminal_utc_offset(t, jan, &off) == LOY_OK && off == 3600);
		CHECK(loy_terminal_utc_offset(t, jul, &off) == LOY_OK && off == 7200);
		CHECK(loy_terminal_utc_offset(t, before_dst, &off) == LOY_OK && off == 3600);
		CHECK(loy_terminal_utc_offset(t, before_dst + 1, &off) == LOY_OK && off == 7200);
		CHECK(loy_terminal_utc_offset(t, jan, NULL) == LOY_E_BAD_ARGUMENT);
		loy_terminal_free(t);
		nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	}

	char dir2[] = "/tmp/loyalty-capi-XXXXXX";
	t = temp_terminal(dir2, "-03:30", NULL, 0);
	if (t) {
		CHECK(loy_terminal_utc_offset(t, jan, &off) == LOY_OK && off == -12600);
		CHECK(loy_terminal_utc_offset(t, jul, &off) == LOY_OK && off == -12600);
		loy_terminal_free(t);
		nftw(dir2, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	}

	/* No zone: the system's, from /etc/localtime (UTC without one). */
	char dir3[] = "/tmp/loyalty-capi-XXXXXX";
	t = temp_terminal(dir3, NULL, NULL, 0);
	if (t) {
		off = 1;
		CHECK(loy_terminal_utc_offset(t, jan, &off) == LOY_OK);
		CHECK(off >= -14 * 3600 && off <= 14 * 3600);
		if (access("/etc/localtime", R_OK) != 0)
			CHECK(off == 0);
		loy_terminal_free(t);
		nftw(dir3, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	}
}

/* Every engine call that returns a status sets or clears its message, the
 * const ones too: a message never outlives the call that wrote it. */
static void engine_messages(const char *program, size_t plen)
{
	loy_engine *e = NULL;
	CHECK_STATUS(loy_engine_new(&e), LOY_OK);
	const char *id = NULL;
	char money[LOY_MONEY_MAX];
	CHECK_STATUS(loy_engine_program_info(e, &id, NULL), LOY_E_NO_PROGRAM);
	CHECK(strstr(loy_engine_errmsg(e), "no program") != NULL);
	CHECK_STATUS(loy_engine_format_money(e, 1, money, sizeof money), LOY_E_NO_PROGRAM);
	CHECK(strstr(loy_engine_errmsg(e), "no program") != NULL);
	CHECK_STATUS(loy_engine_program_load(e, program, plen), LOY_OK);
	CHECK_STATUS(loy_engine_format_money(e, 1, money, 4), LOY_E_BAD_ARGUMENT);
	CHECK(strstr(loy_engine_errmsg(e), "LOY_MONEY_MAX") != NULL);
	CHECK_STATUS(loy_engine_program_info(e, &id, NULL), LOY_OK);
	CHECK(strcmp(loy_engine_errmsg(e), "") == 0);
	CHECK_STATUS(loy_engine_breakdown_part(e, 0, NULL, NULL), LOY_E_BAD_ARGUMENT);
	CHECK(strstr(loy_engine_errmsg(e), "breakdown") != NULL);
	CHECK_STATUS(loy_engine_format_money(e, 1350, money, sizeof money), LOY_OK);
	CHECK(strcmp(loy_engine_errmsg(e), "") == 0);
	loy_engine_free(e);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test_capi PROGRAM.json\n");
		return 2;
	}
	size_t plen = 0;
	const char *program = slurp(argv[1], &plen);
	if (!program) {
		fprintf(stderr, "cannot read %s\n", argv[1]);
		return 2;
	}
	loy_engine *e = NULL;

	/* Version and status names. */
	CHECK(loy_version_num() == LOY_VERSION_NUM);
	CHECK(strcmp(loy_version(), LOY_VERSION_STR) == 0);
	CHECK(strcmp(loy_errstr(LOY_OK), "ok") == 0);
	CHECK(strcmp(loy_errstr(LOY_D_INSUFFICIENT_POINTS), "insufficient_points") == 0);
	CHECK(loy_status_kind(LOY_E_BAD_BASKET) == LOY_KIND_BAD_INPUT);
	CHECK(loy_status_kind(LOY_D_DAILY_CAP) == LOY_KIND_DECLINED);
	CHECK(loy_status_kind(LOY_E_STORAGE) == LOY_KIND_STORAGE);
	CHECK(loy_status_kind(LOY_E_NETWORK) == LOY_KIND_NETWORK);

	CHECK_STATUS(loy_engine_new(NULL), LOY_E_BAD_ARGUMENT);
	CHECK_STATUS(loy_engine_new(&e), LOY_OK);
	if (!e)
		return 1;

	/* Nothing works before a program, and says so. */
	CHECK_STATUS(loy_engine_checkout(e, basket, sizeof basket - 1, NULL, NULL, NULL),
		     LOY_E_NO_PROGRAM);
	CHECK_STATUS(loy_engine_program_info(e, NULL, NULL), LOY_E_NO_PROGRAM);

	/* A bad program names its field and leaves no program in force. */
	const char bad[] = "{\"program\":\"x\",\"version\":1}";
	CHECK_STATUS(loy_engine_program_load(e, bad, sizeof bad - 1), LOY_E_BAD_PROGRAM);
	CHECK(strstr(loy_engine_errmsg(e), "currency") != NULL);
	CHECK_STATUS(loy_engine_program_load(e, "{", 1), LOY_E_BAD_PROGRAM);

	CHECK_STATUS(loy_engine_program_load(e, program, plen), LOY_OK);
	CHECK(strcmp(loy_engine_errmsg(e), "") == 0);
	const char *id = NULL;
	int64_t version = 0;
	CHECK_STATUS(loy_engine_program_info(e, &id, &version), LOY_OK);
	CHECK(id && strcmp(id, "cafe-rewards") == 0);
	CHECK(version == 7);

	/* Money for receipts. */
	char money[LOY_MONEY_MAX];
	CHECK_STATUS(loy_engine_format_money(e, 1350, money, sizeof money), LOY_OK);
	CHECK(strcmp(money, "EUR 13.50") == 0);
	CHECK_STATUS(loy_engine_format_money(e, -5, money, sizeof money), LOY_OK);
	CHECK(strcmp(money, "EUR -0.05") == 0);
	CHECK_STATUS(loy_engine_format_money(e, 1, money, 4), LOY_E_BAD_ARGUMENT);

	/* Cards: each scan form, masking, a bad check digit. */
	char masked[LOY_MASKED_CARD_MAX];
	CHECK_STATUS(loy_engine_card_check(e, "6280 0012-3456 7895", masked, sizeof masked), LOY_OK);
	CHECK(strcmp(masked, "****7895") == 0);
	CHECK_STATUS(loy_engine_card_check(e, ";6280001234567895=2812?", masked, sizeof masked), LOY_OK);
	CHECK_STATUS(loy_engine_card_check(e, "LOYALTY:6280001234567895", masked, sizeof masked), LOY_OK);
	/* A buffer too small is refused, naming the bytes needed; NULL is fine. */
	CHECK_STATUS(loy_engine_card_check(e, "6280001234567895", masked, 8), LOY_E_BAD_ARGUMENT);
	CHECK(strstr(loy_engine_errmsg(e), "needs 9") != NULL);
	CHECK_STATUS(loy_engine_card_check(e, "6280001234567895", NULL, 0), LOY_OK);
	CHECK_STATUS(loy_engine_card_check(e, "6280001234567897", masked, sizeof masked), LOY_E_BAD_CARD);
	CHECK(strstr(loy_engine_errmsg(e), "Luhn") != NULL);

	/* Checkout of an unknown card: the lowest tier, tobacco excluded.
	 * S = 700; base 7; double-tuesday (x2 on a Tuesday) adds 7. */
	loy_checkout co = LOY_INIT(loy_checkout);
	CHECK_STATUS(loy_engine_checkout(e, basket, sizeof basket - 1, NULL, NULL, &co), LOY_OK);
	CHECK(co.earned == 14);
	{
		/* A caller built against a newer header, whose structs have grown:
		 * the library reads and writes the fields it knows, leaves the rest. */
		struct {
			loy_checkout co;
			int64_t later;
		} newer;
		memset(&newer, 0, sizeof newer);
		newer.co.size = sizeof newer;
		newer.later = 77;
		CHECK_STATUS(loy_engine_checkout(e, basket, sizeof basket - 1, NULL, NULL, &newer.co), LOY_OK);
		CHECK(newer.co.earned == 14 && newer.co.size == sizeof newer && newer.later == 77);
		/* One whose size was left 0 is refused, naming the fix. */
		loy_checkout unsized;
		memset(&unsized, 0, sizeof unsized);
		CHECK_STATUS(loy_engine_checkout(e, basket, sizeof basket - 1, NULL, NULL, &unsized),
			     LOY_E_BAD_ARGUMENT);
		CHECK(strstr(loy_engine_errmsg(e), "LOY_INIT(loy_checkout)") != NULL);
	}
	CHECK(co.eligible_spend == 700);
	CHECK(strcmp(co.tier, "Member") == 0);
	CHECK(loy_engine_breakdown_count(e) == 2);
	const char *rule = NULL;
	int64_t points = -1;
	CHECK_STATUS(loy_engine_breakdown_part(e, 0, &rule, &points), LOY_OK);
	CHECK(rule && strcmp(rule, "base") == 0 && points == 7);
	CHECK_STATUS(loy_engine_breakdown_part(e, 1, &rule, &points), LOY_OK);
	CHECK(rule && strcmp(rule, "double-tuesday") == 0 && points == 7);
	CHECK_STATUS(loy_engine_breakdown_part(e, 2, &rule, &points), LOY_E_BAD_ARGUMENT);

	/* An unknown card cannot redeem; a known one short of points neither. */
	loy_redemption r = LOY_INIT(loy_redemption);
	r.kind = LOY_REDEEM_REWARD;
	r.reward = "free-coffee";
	CHECK_STATUS(loy_engine_checkout(e, basket, sizeof basket - 1, NULL, &r, &co),
		     LOY_D_BALANCE_UNKNOWN);
	loy_member m = LOY_INIT(loy_member);
	m.known = 1;
	m.balance = 299;
	CHECK_STATUS(loy_engine_checkout(e, basket, sizeof basket - 1, &m, &r, &co),
		     LOY_D_INSUFFICIENT_POINTS);
	r.reward = "no-such-reward";
	CHECK_STATUS(loy_engine_checkout(e, basket, sizeof basket - 1, &m, &r, &co),
		     LOY_E_UNKNOWN_REWARD);

	/* A Silver member takes the free coffee: one unit (350) given, S = 350,
	 * base 3, tier 350×25/10000 = 0 (left out), double-tuesday 3,
	 * coffee-stamp 5 × 1 sold unit = 5. */
	m.balance = 1000;
	m.qualifying_spend = 20000;
	r.reward = "free-coffee";
	CHECK_STATUS(loy_engine_checkout(e, basket, sizeof basket - 1, &m, &r, &co), LOY_OK);
	CHECK(strcmp(co.tier, "Silver") == 0);
	CHECK(co.redeemed == 300);
	CHECK(co.discount == 350);
	CHECK(co.eligible_spend == 350);
	CHECK(co.earned == 11);

	/* A full refund takes back all 11 and gives back all 300. */
	const char *json = loy_engine_result_json(e);
	const char *at = strstr(json, "\"receipt\":");
	CHECK(at != NULL);
	if (at) {
		size_t n = strlen(at + 10) - 1; /* without the closing '}' */
		char *receipt = malloc(n + 1);
		memcpy(receipt, at + 10, n);
		receipt[n] = '\0';
		int64_t reversed = 0, returned = 0;
		CHECK_STATUS(loy_engine_refund(e, receipt, n, NULL, 0, &reversed, &returned), LOY_OK);
		CHECK(reversed == 11);
		CHECK(returned == 300);
		loy_return_line line = {"COF-01", 3};
		CHECK_STATUS(loy_engine_refund(e, receipt, n, &line, 1, NULL, NULL), LOY_E_BAD_REFUND);
		free(receipt);
	}
	CHECK_STATUS(loy_engine_refund(e, "[]", 2, NULL, 0, NULL, NULL), LOY_E_BAD_JSON);

	/* Bad baskets name the line and field. */
	const char badb[] = "{\"receipt_id\":\"R-2\",\"at\":\"2026-11-24T10:15:00Z\","
			    "\"lines\":[{\"sku\":\"A\",\"qty\":0,\"unit_price\":1}]}";
	CHECK_STATUS(loy_engine_checkout(e, badb, sizeof badb - 1, NULL, NULL, NULL),
		     LOY_E_BAD_BASKET);
	CHECK(strstr(loy_engine_errmsg(e), "lines[0].qty") != NULL);

	/* An older version of the same program is refused; the newer stays. */
	char *older = malloc(plen + 1);
	memcpy(older, program, plen);
	older[plen] = '\0';
	char *v = strstr(older, "\"version\": 7");
	CHECK(v != NULL);
	if (v) {
		v[11] = '6';
		CHECK_STATUS(loy_engine_program_load(e, older, plen), LOY_E_OLD_PROGRAM);
		CHECK_STATUS(loy_engine_program_info(e, NULL, &version), LOY_OK);
		CHECK(version == 7);
	}
	free(older);

	loy_engine_free(e);
	loy_engine_free(NULL);

	terminal_on_hal(program, plen);
	terminal_errors_and_results(program, plen);
	terminal_donate(program, plen);
	terminal_enroll_referred(program, plen);
	terminal_utc_offset();
	engine_messages(program, plen);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
