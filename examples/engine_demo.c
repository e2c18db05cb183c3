/*
 * engine_demo.c - runs the rules engine over a program and a basket through
 * the public C API, and prints what a cashier would see: tier, points with
 * their breakdown, the redemption, and a refund. Written in plain C to show
 * how a POS application uses loyalty.h.
 *
 *   loyalty-engine-demo PROGRAM.json BASKET.json [options]
 *     --spend N       member's qualifying spend (minor units)
 *     --balance N     member's available points (makes the balance known)
 *     --blocked       the card is blocked
 *     --redeem P      redeem P points for money
 *     --reward ID     take reward ID
 *     --refund SKU=Q  then refund Q units of SKU (repeatable; "all" for all)
 *     --title TEXT    a heading line
 */
#define _POSIX_C_SOURCE 200809L /* strndup */

#include <loyalty/loyalty.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Example documents are small; a bound keeps a wrong path from eating memory. */
#define DEMO_FILE_BYTES_MAX (1 << 20)
#define DEMO_REFUND_LINES_MAX 16

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "error: bad_argument: cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(DEMO_FILE_BYTES_MAX);
	size_t n = buf ? fread(buf, 1, DEMO_FILE_BYTES_MAX, f) : 0;
	int too_big = buf && n == DEMO_FILE_BYTES_MAX;
	fclose(f);
	if (!buf || too_big) {
		fprintf(stderr, "error: bad_argument: %s is larger than %d bytes\n", path,
			DEMO_FILE_BYTES_MAX);
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static int parse_i64(const char *text, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno || end == text || *end)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static int fail(loy_engine *e, loy_status st)
{
	fprintf(stderr, "error: %s: %s\n", loy_errstr(st), loy_engine_errmsg(e));
	return (int)loy_status_kind(st);
}

static void money(const loy_engine *e, int64_t amount, char *buf)
{
	if (loy_engine_format_money(e, amount, buf, LOY_MONEY_MAX) != LOY_OK)
		snprintf(buf, LOY_MONEY_MAX, "%" PRId64, amount);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s PROGRAM.json BASKET.json [--spend N] [--balance N] "
				"[--blocked] [--redeem P | --reward ID] [--refund SKU=Q|all]...\n",
			argv[0]);
		return 2;
	}
	loy_member member = LOY_INIT(loy_member);
	loy_redemption redemption = LOY_INIT(loy_redemption);
	loy_return_line refund[DEMO_REFUND_LINES_MAX];
	char refund_skus[DEMO_REFUND_LINES_MAX][LOY_NAME_MAX];
	size_t nrefund = 0;
	int refund_all = 0;
	const char *title = NULL;

	for (int i = 3; i < argc; i++) {
		const char *opt = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		int64_t n;
		if (!strcmp(opt, "--blocked")) {
			member.blocked = 1;
			continue;
		}
		if (!val) {
			fprintf(stderr, "error: bad_argument: %s needs a value\n", opt);
			return 2;
		}
		i++;
		if (!strcmp(opt, "--title")) {
			title = val;
		} else if (!strcmp(opt, "--reward")) {
			redemption.kind = LOY_REDEEM_REWARD;
			redemption.reward = val;
		} else if (!strcmp(opt, "--refund")) {
			const char *eq = strchr(val, '=');
			if (!strcmp(val, "all")) {
				refund_all = 1;
				continue;
			}
			if (!eq || eq == val || (size_t)(eq - val) >= LOY_NAME_MAX ||
			    parse_i64(eq + 1, &n) || nrefund == DEMO_REFUND_LINES_MAX) {
				fprintf(stderr, "error: bad_argument: --refund wants SKU=QTY, got %s\n", val);
				return 2;
			}
			memcpy(refund_skus[nrefund], val, (size_t)(eq - val));
			refund_skus[nrefund][eq - val] = '\0';
			refund[nrefund].sku = refund_skus[nrefund];
			refund[nrefund].qty = n;
			nrefund++;
		} else if (parse_i64(val, &n)) {
			fprintf(stderr, "error: bad_argument: %s wants an integer, got %s\n", opt, val);
			return 2;
		} else if (!strcmp(opt, "--spend")) {
			member.qualifying_spend = n;
		} else if (!strcmp(opt, "--balance")) {
			member.known = 1;
			member.balance = n;
		} else if (!strcmp(opt, "--redeem")) {
			redemption.kind = LOY_REDEEM_POINTS;
			redemption.points = n;
		} else {
			fprintf(stderr, "error: bad_argument: unknown option %s\n", opt);
			return 2;
		}
	}

	loy_engine *e;
	if (loy_engine_new(&e) != LOY_OK)
		return 1;
	size_t plen, blen;
	char *program = read_file(argv[1], &plen);
	char *basket = program ? read_file(argv[2], &blen) : NULL;
	int rc = 0;
	if (!program || !basket) {
		rc = 2;
		goto out;
	}
	loy_status st = loy_engine_program_load(e, program, plen);
	if (st != LOY_OK) {
		rc = fail(e, st);
		goto out;
	}

	if (title)
		printf("== %s\n", title);
	/* The heading before any error line on stderr. */
	fflush(stdout);
	loy_checkout co = LOY_INIT(loy_checkout);
	st = loy_engine_checkout(e, basket, blen, &member, &redemption, &co);
	if (st != LOY_OK) {
		rc = fail(e, st);
		goto out;
	}
	char m1[LOY_MONEY_MAX], m2[LOY_MONEY_MAX];
	money(e, co.eligible_spend, m1);
	printf("  tier %-18s eligible spend %14s\n", co.tier, m1);
	for (size_t i = 0; i < loy_engine_breakdown_count(e); i++) {
		const char *rule;
		int64_t points;
		if (loy_engine_breakdown_part(e, i, &rule, &points) == LOY_OK)
			printf("    %-24s %10" PRId64 "\n", rule, points);
	}
	printf("  %-26s %10" PRId64 "\n", "earned", co.earned);
	if (co.redeemed) {
		money(e, co.discount, m2);
		printf("  %-26s %10" PRId64 "  (%s off)\n", "redeemed", co.redeemed, m2);
	}
	if (member.known)
		printf("  %-26s %10" PRId64 "\n", "balance after",
		       member.balance - co.redeemed + co.earned);

	if (nrefund || refund_all) {
		/* The receipt is the "receipt" member of the result JSON; a real POS
		 * keeps it (the terminal's ledger does) and hands it back here. */
		const char *json = loy_engine_result_json(e);
		const char *r = strstr(json, "\"receipt\":");
		size_t rlen = r ? strlen(r) : 0;
		if (!r || rlen < 12) {
			rc = 1;
			goto out;
		}
		char *receipt = strndup(r + 10, rlen - 11); /* drop the key and the final '}' */
		int64_t reversed = 0, returned = 0;
		st = loy_engine_refund(e, receipt, strlen(receipt), refund, refund_all ? 0 : nrefund,
				       &reversed, &returned);
		free(receipt);
		if (st != LOY_OK) {
			rc = fail(e, st);
			goto out;
		}
		printf("  refund: %" PRId64 " earned points taken back, %" PRId64
		       " redeemed points given back\n",
		       reversed, returned);
	}
out:
	free(program);
	free(basket);
	loy_engine_free(e);
	return rc;
}
