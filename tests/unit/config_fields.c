/*
 * The one table of configuration fields (src/config/fields.c) against the two things that must agree with it:
 * the parser (section by section, the fields it accepts are the table's rows of that section, both ways) and
 * docs/config.md (its field reference is exactly what the generator writes from the table).  Each failure says
 * which row to add, remove or regenerate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "config/config.h"
#include "config/fields.h"
#include "test.h"

#define PROBE "zz_not_a_field"
#define MAX_SECTIONS 128

/* The sections to probe: every row's section, and every row whose type says it is a mapping (or a list of
 * them) opens one, so that a section added with its own row but none of its fields is still probed. */
static size_t sections(char out[][128])
{
    size_t n = 0;
    for (size_t i = 0; i <= gyre_config_nfields * 2 && n < MAX_SECTIONS; i++) {
        char s[128];
        const gyre_config_field_t *f = &gyre_config_fields[i / 2];
        if (i == gyre_config_nfields * 2)
            break;
        if (i % 2 == 0) {
            gyre_config_field_section(f->path, s, sizeof(s));
        } else {
            size_t tl = strlen(f->type);
            if (strcmp(f->type, "list of mappings") == 0)
                snprintf(s, sizeof(s), "%s[]", f->path);
            else if (tl >= 7 && strcmp(f->type + tl - 7, "mapping") == 0)
                snprintf(s, sizeof(s), "%s", f->path);
            else
                continue;
        }
        int seen = 0;
        for (size_t j = 0; j < n && !seen; j++)
            seen = strcmp(out[j], s) == 0;
        if (!seen)
            snprintf(out[n++], 128, "%s", s);
    }
    return n;
}

/* YAML that puts an unknown field in `section`: "providers[].prices.*" is {providers: [{prices: {m: {X}}}]}. */
static void probe_yaml(const char *section, char *out, size_t len)
{
    char inner[1024], next[1200];
    snprintf(inner, sizeof(inner), "{%s: 1}", PROBE);
    if (section[0] != '\0') {
        char segs[16][128];
        size_t nsegs = 0;
        for (const char *p = section; nsegs < 16;) {
            size_t w = strcspn(p, ".");
            snprintf(segs[nsegs++], 128, "%.*s", (int)w, p);
            if (p[w] == '\0')
                break;
            p += w + 1;
        }
        for (size_t i = nsegs; i-- > 0;) {
            size_t w = strlen(segs[i]);
            if (strcmp(segs[i], "*") == 0)
                snprintf(next, sizeof(next), "{m: %.1000s}", inner);
            else if (w > 2 && strcmp(segs[i] + w - 2, "[]") == 0)
                snprintf(next, sizeof(next), "{%.*s: [%.1000s]}", (int)(w - 2), segs[i], inner);
            else
                snprintf(next, sizeof(next), "{%.100s: %.1000s}", segs[i], inner);
            snprintf(inner, sizeof(inner), "%.1000s", next);
        }
    }
    snprintf(out, len, "%s\n", inner);
}

/* Whether `name` is in the comma-separated list `list` (of length len). */
static int in_list(const char *list, size_t len, const char *name)
{
    for (size_t at = 0; at < len;) {
        while (at < len && list[at] == ' ')
            at++;
        size_t w = 0;
        while (at + w < len && list[at + w] != ',')
            w++;
        if (w == strlen(name) && memcmp(list + at, name, w) == 0)
            return 1;
        at += w + 1;
    }
    return 0;
}

TEST(config_fields_table_and_parser_know_the_same_fields_in_every_section)
{
    static char secs[MAX_SECTIONS][128];
    size_t nsecs = sections(secs);
    CHECK(nsecs >= 13);
    for (size_t s = 0; s < nsecs; s++) {
        const char *sec = secs[s];
        char yaml[1200];
        probe_yaml(sec, yaml, sizeof(yaml));
        gyre_config_errors_t errs = {0};
        gyre_config_t *c = gyre_config_parse("t.yaml", yaml, strlen(yaml), &errs);
        gyre_config_free(c);
        const char *known = NULL;
        size_t klen = 0;
        for (size_t i = 0; i < errs.count && known == NULL; i++) {
            const char *e = strstr(errs.items[i], "unknown field '" PROBE "' (known: ");
            if (e != NULL) {
                known = e + strlen("unknown field '" PROBE "' (known: ");
                klen = strcspn(known, ";)");
            }
        }
        if (known == NULL) {
            fprintf(stderr, "  section '%s': the parser did not report '" PROBE "' as an unknown field with a "
                            "'(known: ...)' list for this YAML:\n    %s", sec, yaml);
            gyre_test_failures++;
            gyre_config_errors_dispose(&errs);
            continue;
        }
        /* Parser → table. */
        for (size_t at = 0; at < klen;) {
            while (at < klen && known[at] == ' ')
                at++;
            size_t w = 0;
            while (at + w < klen && known[at + w] != ',')
                w++;
            char path[256];
            snprintf(path, sizeof(path), "%.120s%s%.*s", sec, sec[0] ? "." : "", (int)(w < 120 ? w : 120), known + at);
            int found = 0;
            for (size_t i = 0; i < gyre_config_nfields && !found; i++)
                found = strcmp(gyre_config_fields[i].path, path) == 0;
            if (!found) {
                fprintf(stderr, "  the parser accepts '%s' but src/config/fields.c has no row for it: add\n"
                                "    {\"%s\", \"TYPE\", \"DEFAULT\", \"WHAT IT MEANS\"},\n"
                                "  beside the other rows of section '%s', then run scripts/gen-config-doc.sh\n",
                        path, path, sec[0] ? sec : "(the root)");
                gyre_test_failures++;
            }
            at += w + 1;
        }
        /* Table → parser. */
        for (size_t i = 0; i < gyre_config_nfields; i++) {
            char fs[128];
            const char *path = gyre_config_fields[i].path;
            if (strcmp(gyre_config_field_section(path, fs, sizeof(fs)), sec) != 0)
                continue;
            const char *name = path + strlen(sec) + (sec[0] ? 1 : 0);
            if (!in_list(known, klen, name)) {
                fprintf(stderr, "  src/config/fields.c has a row '%s' that the parser of section '%s' does not "
                                "accept (known: %.*s): remove the row or correct its path\n",
                        path, sec[0] ? sec : "(the root)", (int)klen, known);
                gyre_test_failures++;
            }
        }
        gyre_config_errors_dispose(&errs);
    }
}

TEST(config_fields_every_row_has_a_type_and_a_description_and_a_unique_path)
{
    for (size_t i = 0; i < gyre_config_nfields; i++) {
        const gyre_config_field_t *f = &gyre_config_fields[i];
        CHECK(f->type != NULL && f->type[0] != '\0');
        CHECK(f->def != NULL);
        CHECK(f->description != NULL && f->description[0] != '\0');
        for (size_t j = 0; j < i; j++)
            if (strcmp(gyre_config_fields[j].path, f->path) == 0) {
                fprintf(stderr, "  src/config/fields.c: '%s' has two rows\n", f->path);
                gyre_test_failures++;
            }
    }
}

TEST(config_fields_docs_config_md_is_what_the_generator_writes)
{
    static const char begin[] =
        "<!-- BEGIN fields (generated by scripts/gen-config-doc.sh from src/config/fields.c; do not edit) -->\n";
    static const char end[] = "<!-- END fields -->\n";
    gyre_buf_t doc, gen;
    gyre_buf_init(&doc, (size_t)4 << 20);
    gyre_buf_init(&gen, (size_t)1 << 20);
    /* The unit tests run from the repository's root (tests/run.sh). */
    CHECK_INT(gyre_buf_append_file(&doc, "docs/config.md"), 0);
    gyre_buf_append(&doc, "", 1); /* NUL-terminated for strstr */
    gyre_buf_appends(&gen, "\n");
    gyre_config_fields_markdown(&gen);
    gyre_buf_appends(&gen, "\n");
    gyre_buf_append(&gen, "", 1);
    const char *b = doc.base != NULL ? strstr(doc.base, begin) : NULL;
    const char *e = b != NULL ? strstr(b, end) : NULL;
    CHECK(b != NULL && e != NULL);
    if (b != NULL && e != NULL) {
        b += strlen(begin);
        if ((size_t)(e - b) != strlen(gen.base) || memcmp(b, gen.base, (size_t)(e - b)) != 0) {
            fprintf(stderr, "  docs/config.md's field reference is not what src/config/fields.c generates: run "
                            "scripts/gen-config-doc.sh\n");
            gyre_test_failures++;
        }
    }
    gyre_buf_dispose(&doc);
    gyre_buf_dispose(&gen);
}

TEST(config_fields_name_max_tokens_and_region_with_their_defaults)
{
    int seen = 0;
    for (size_t i = 0; i < gyre_config_nfields; i++) {
        if (strcmp(gyre_config_fields[i].path, "providers[].max_tokens") == 0) {
            CHECK_STR(gyre_config_fields[i].def, "4096");
            seen |= 1;
        }
        if (strcmp(gyre_config_fields[i].path, "providers[].region") == 0) {
            CHECK_STR(gyre_config_fields[i].def, "from the host name, else us-east-1");
            seen |= 2;
        }
    }
    CHECK_INT(seen, 3);
}
