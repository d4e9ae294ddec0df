/* wk_ticket_json: stored BSON tickets as the API shows them. */
#include "test_support.h"

#include <bson/bson.h>
#include <stdlib.h>
#include <string.h>

#include "wk_ticket_json.h"

#define CREATED_MS 1730113200000LL /* 2024-10-28T11:00:00.000Z */
#define UPDATED_MS 1730113800000LL /* 2024-10-28T11:10:00.000Z */

static const char *const TICKET_FIELDS[] = {"_id",      "creatorId",   "creatorType", "category",
                                            "subject",  "description", "priority",    "status",
                                            "response", "createdAt",   "updatedAt",   "__v"};
static const char *const RESPONSE_FIELDS[] = {"_id",         "creatorId", "creatorType",
                                              "description", "createdAt", "updatedAt"};

static bson_oid_t oid(const char *hex) {
    bson_oid_t value;
    assert_true(bson_oid_is_valid(hex, strlen(hex)));
    bson_oid_init_from_string(&value, hex);
    return value;
}

/* The seed's ticket, fields stored in a scrambled order plus teamId. */
static bson_t *seed_ticket_new(void) {
    bson_oid_t id = oid("6720b1c8f1c2b3a5e4d90130");
    return BCON_NEW("teamId", BCON_UTF8("team-a"), "__v", BCON_INT32(0), "updatedAt", BCON_DATE_TIME(CREATED_MS),
                    "status", BCON_UTF8("created"), "response", "[", "]", "subject", BCON_UTF8("Account Issue"), "_id",
                    BCON_OID(&id), "priority", BCON_UTF8("low"), "creatorType", BCON_UTF8("customer"), "description",
                    BCON_UTF8("I am facing an issue with my account."), "createdAt", BCON_DATE_TIME(CREATED_MS),
                    "creatorId", BCON_UTF8("671fa1c8f1c2b3a5e4d90001"), "category", BCON_UTF8("Support"));
}

static const char SEED_TICKET_JSON[] =
    "{\"_id\":\"6720b1c8f1c2b3a5e4d90130\",\"creatorId\":\"671fa1c8f1c2b3a5e4d90001\",\"creatorType\":\"customer\","
    "\"category\":\"Support\",\"subject\":\"Account Issue\",\"description\":\"I am facing an issue with my account.\","
    "\"priority\":\"low\",\"status\":\"created\",\"response\":[],\"createdAt\":\"2024-10-28T11:00:00.000Z\","
    "\"updatedAt\":\"2024-10-28T11:00:00.000Z\",\"__v\":0}";

/* A ticket with two replies (entries scrambled too) and __v as int64. */
static bson_t *answered_ticket_new(void) {
    bson_oid_t id = oid("6720b1c8f1c2b3a5e4d90130");
    bson_oid_t first = oid("6720b473f1c2b3a5e4d90132");
    bson_oid_t second = oid("6720b4a1f1c2b3a5e4d90135");
    return BCON_NEW("_id", BCON_OID(&id), "category", BCON_UTF8("Support"), "creatorId",
                    BCON_UTF8("671fa1c8f1c2b3a5e4d90001"), "response", "[", "{", "description",
                    BCON_UTF8("We are looking into it."), "updatedAt", BCON_DATE_TIME(UPDATED_MS), "creatorType",
                    BCON_UTF8("admin"), "_id", BCON_OID(&first), "createdAt", BCON_DATE_TIME(UPDATED_MS), "creatorId",
                    BCON_UTF8("671fb1d8f1c2b3a5e4d90050"), "}", "{", "creatorId", BCON_UTF8("671fa1c8f1c2b3a5e4d90001"),
                    "_id", BCON_OID(&second), "creatorType", BCON_UTF8("customer"), "createdAt",
                    BCON_DATE_TIME(UPDATED_MS + 61001), "updatedAt", BCON_DATE_TIME(UPDATED_MS + 61001), "description",
                    BCON_UTF8("Thanks \xf0\x9f\x98\x80"), "}", "]", "subject", BCON_UTF8("Account Issue"),
                    "description", BCON_UTF8("I am facing an issue with my account."), "priority", BCON_UTF8("high"),
                    "status", BCON_UTF8("in-progress"), "teamId", BCON_UTF8("team-a"), "createdAt",
                    BCON_DATE_TIME(CREATED_MS), "updatedAt", BCON_DATE_TIME(UPDATED_MS + 61001), "creatorType",
                    BCON_UTF8("customer"), "__v", BCON_INT64(2));
}

static const char ANSWERED_TICKET_JSON[] =
    "{\"_id\":\"6720b1c8f1c2b3a5e4d90130\",\"creatorId\":\"671fa1c8f1c2b3a5e4d90001\",\"creatorType\":\"customer\","
    "\"category\":\"Support\",\"subject\":\"Account Issue\",\"description\":\"I am facing an issue with my account.\","
    "\"priority\":\"high\",\"status\":\"in-progress\",\"response\":["
    "{\"_id\":\"6720b473f1c2b3a5e4d90132\",\"creatorId\":\"671fb1d8f1c2b3a5e4d90050\",\"creatorType\":\"admin\","
    "\"description\":\"We are looking into it.\",\"createdAt\":\"2024-10-28T11:10:00.000Z\","
    "\"updatedAt\":\"2024-10-28T11:10:00.000Z\"},"
    "{\"_id\":\"6720b4a1f1c2b3a5e4d90135\",\"creatorId\":\"671fa1c8f1c2b3a5e4d90001\",\"creatorType\":\"customer\","
    "\"description\":\"Thanks \xf0\x9f\x98\x80\",\"createdAt\":\"2024-10-28T11:11:01.001Z\","
    "\"updatedAt\":\"2024-10-28T11:11:01.001Z\"}],"
    "\"createdAt\":\"2024-10-28T11:00:00.000Z\",\"updatedAt\":\"2024-10-28T11:11:01.001Z\",\"__v\":2}";

/* dst = src without the member `name` (dst must not be initialized). */
static void copy_without(const bson_t *src, bson_t *dst, const char *name) {
    bson_init(dst);
    bson_copy_to_excluding_noinit(src, dst, name, NULL);
}

static char *dump(const json_t *value) {
    char *text = json_dumps(value, JSON_COMPACT);
    assert_non_null(text);
    return text;
}

static void assert_ticket_json(const bson_t *ticket, const char *expected) {
    json_t *shown = wk_ticket_json_new(ticket);
    assert_non_null(shown);
    char *text = dump(shown);
    assert_string_equal(text, expected);
    free(text);
    json_decref(shown);
}

static void test_seed_ticket(void **state) {
    (void)state;
    bson_t *ticket = seed_ticket_new();
    assert_ticket_json(ticket, SEED_TICKET_JSON);
    bson_destroy(ticket);
}

static void test_ticket_with_replies(void **state) {
    (void)state;
    bson_t *ticket = answered_ticket_new();
    assert_ticket_json(ticket, ANSWERED_TICKET_JSON);
    json_t *shown = wk_ticket_json_new(ticket);
    assert_null(json_object_get(shown, "teamId"));
    assert_int_equal(json_object_size(shown), 12);
    json_decref(shown);
    bson_destroy(ticket);
}

/* The lifecycle's fields follow __v, in their order whatever the stored
 * order, only when set; internal only when true; hidden members stay hidden. */
static void test_lifecycle_fields_follow_version(void **state) {
    (void)state;
    bson_oid_t id = oid("6720b1c8f1c2b3a5e4d90130");
    bson_oid_t note = oid("6720b473f1c2b3a5e4d90132");
    bson_oid_t reply = oid("6720b4a1f1c2b3a5e4d90135");
    bson_t *ticket =
        BCON_NEW("resolvedAt", BCON_DATE_TIME(UPDATED_MS), "_id", BCON_OID(&id), "creatorId", BCON_UTF8("c1"),
                 "creatorType", BCON_UTF8("customer"), "category", BCON_UTF8("Support"), "subject", BCON_UTF8("s"),
                 "description", BCON_UTF8("d"), "priority", BCON_UTF8("urgent"), "status", BCON_UTF8("resolved"),
                 "response", "[", "{", "_id", BCON_OID(&note), "creatorId", BCON_UTF8("a1"), "creatorType",
                 BCON_UTF8("admin"), "description", BCON_UTF8("note"), "createdAt", BCON_DATE_TIME(UPDATED_MS),
                 "updatedAt", BCON_DATE_TIME(UPDATED_MS), "internal", BCON_BOOL(true), "}", "{", "_id",
                 BCON_OID(&reply), "creatorId", BCON_UTF8("c1"), "creatorType", BCON_UTF8("customer"), "description",
                 BCON_UTF8("r"), "createdAt", BCON_DATE_TIME(UPDATED_MS), "updatedAt", BCON_DATE_TIME(UPDATED_MS),
                 "internal", BCON_BOOL(false), "statusFrom", BCON_UTF8("pending"), "statusTo", BCON_UTF8("open"), "}",
                 "]", "createdAt", BCON_DATE_TIME(CREATED_MS), "updatedAt", BCON_DATE_TIME(UPDATED_MS), "__v",
                 BCON_INT32(4), "statusChangedAt", BCON_DATE_TIME(UPDATED_MS), "assigneeId", BCON_UTF8("a1"), "teamId",
                 BCON_UTF8("team-a"), "changeLog", "[", "{", "_id", BCON_OID(&id), "}", "]");
    assert_ticket_json(
        ticket, "{\"_id\":\"6720b1c8f1c2b3a5e4d90130\",\"creatorId\":\"c1\",\"creatorType\":\"customer\","
                "\"category\":\"Support\",\"subject\":\"s\",\"description\":\"d\",\"priority\":\"urgent\","
                "\"status\":\"resolved\",\"response\":[{\"_id\":\"6720b473f1c2b3a5e4d90132\",\"creatorId\":\"a1\","
                "\"creatorType\":\"admin\",\"description\":\"note\",\"createdAt\":\"2024-10-28T11:10:00.000Z\","
                "\"updatedAt\":\"2024-10-28T11:10:00.000Z\",\"internal\":true},{\"_id\":\"6720b4a1f1c2b3a5e4d90135\","
                "\"creatorId\":\"c1\",\"creatorType\":\"customer\",\"description\":\"r\","
                "\"createdAt\":\"2024-10-28T11:10:00.000Z\",\"updatedAt\":\"2024-10-28T11:10:00.000Z\"}],"
                "\"createdAt\":\"2024-10-28T11:00:00.000Z\",\"updatedAt\":\"2024-10-28T11:10:00.000Z\",\"__v\":4,"
                "\"assigneeId\":\"a1\",\"statusChangedAt\":\"2024-10-28T11:10:00.000Z\","
                "\"resolvedAt\":\"2024-10-28T11:10:00.000Z\"}");
    bson_destroy(ticket);
}

static void test_version_counter_types(void **state) {
    (void)state;
    static const struct {
        int kind; /* 0 int32, 1 int64 */
        int64_t value;
    } cases[] = {{0, 0}, {0, 7}, {0, 2147483647}, {1, 0}, {1, 3}, {1, 4294967296LL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bson_t *base = seed_ticket_new();
        bson_t ticket;
        copy_without(base, &ticket, "__v");
        if (cases[i].kind == 0) BSON_APPEND_INT32(&ticket, "__v", (int32_t)cases[i].value);
        else BSON_APPEND_INT64(&ticket, "__v", cases[i].value);
        json_t *shown = wk_ticket_json_new(&ticket);
        assert_non_null(shown);
        json_t *version = json_object_get(shown, "__v");
        assert_true(json_is_integer(version));
        assert_int_equal(json_integer_value(version), cases[i].value);
        /* Still the last member. */
        const char *last = NULL;
        const char *key;
        json_t *value;
        json_object_foreach(shown, key, value) last = key;
        assert_string_equal(last, "__v");
        json_decref(shown);
        bson_destroy(&ticket);
        bson_destroy(base);
    }
}

static void test_dates(void **state) {
    (void)state;
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {{0, "1970-01-01T00:00:00.000Z"},
                 {1730113200999LL, "2024-10-28T11:00:00.999Z"},
                 {-1, "1969-12-31T23:59:59.999Z"},
                 {1709251199001LL, "2024-02-29T23:59:59.001Z"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bson_t *base = seed_ticket_new();
        bson_t ticket;
        copy_without(base, &ticket, "createdAt");
        BSON_APPEND_DATE_TIME(&ticket, "createdAt", cases[i].ms);
        json_t *shown = wk_ticket_json_new(&ticket);
        assert_non_null(shown);
        assert_string_equal(json_string_value(json_object_get(shown, "createdAt")), cases[i].text);
        assert_string_equal(json_string_value(json_object_get(shown, "updatedAt")), "2024-10-28T11:00:00.000Z");
        json_decref(shown);
        bson_destroy(&ticket);
        bson_destroy(base);
    }
}

static void test_missing_field_gives_null(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof TICKET_FIELDS / sizeof TICKET_FIELDS[0]; i++) {
        bson_t *base = answered_ticket_new();
        bson_t ticket;
        copy_without(base, &ticket, TICKET_FIELDS[i]);
        json_t *shown = wk_ticket_json_new(&ticket);
        if (shown != NULL) fail_msg("ticket without %s was shown", TICKET_FIELDS[i]);
        bson_destroy(&ticket);
        bson_destroy(base);
    }
}

/* Each field present but of the wrong BSON type. */
static void test_mistyped_field_gives_null(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof TICKET_FIELDS / sizeof TICKET_FIELDS[0]; i++) {
        const char *name = TICKET_FIELDS[i];
        bson_t *base = seed_ticket_new();
        bson_t ticket;
        copy_without(base, &ticket, name);
        if (strcmp(name, "_id") == 0) BSON_APPEND_UTF8(&ticket, name, "6720b1c8f1c2b3a5e4d90130");
        else if (strcmp(name, "createdAt") == 0 || strcmp(name, "updatedAt") == 0)
            BSON_APPEND_UTF8(&ticket, name, "2024-10-28T11:00:00.000Z");
        else if (strcmp(name, "__v") == 0) BSON_APPEND_UTF8(&ticket, name, "0");
        else if (strcmp(name, "response") == 0) BSON_APPEND_UTF8(&ticket, name, "[]");
        else BSON_APPEND_INT32(&ticket, name, 1);
        json_t *shown = wk_ticket_json_new(&ticket);
        if (shown != NULL) fail_msg("ticket with a mistyped %s was shown", name);
        bson_destroy(&ticket);
        bson_destroy(base);
    }
    /* null counts as mistyped, not as absent. */
    bson_t *base = seed_ticket_new();
    bson_t ticket;
    copy_without(base, &ticket, "subject");
    BSON_APPEND_NULL(&ticket, "subject");
    assert_null(wk_ticket_json_new(&ticket));
    bson_destroy(&ticket);
    bson_destroy(base);
}

static void test_bad_reply_entry_gives_null(void **state) {
    (void)state;
    bson_oid_t id = oid("6720b1c8f1c2b3a5e4d90130");
    bson_oid_t response_id = oid("6720b473f1c2b3a5e4d90132");
    /* An entry that is not a document. */
    bson_t *base = seed_ticket_new();
    bson_t ticket;
    copy_without(base, &ticket, "response");
    bson_t *response = BCON_NEW("0", BCON_UTF8("not a reply"));
    BSON_APPEND_ARRAY(&ticket, "response", response);
    assert_null(wk_ticket_json_new(&ticket));
    bson_destroy(response);
    bson_destroy(&ticket);

    /* An entry missing each of its fields in turn. */
    for (size_t i = 0; i < sizeof RESPONSE_FIELDS / sizeof RESPONSE_FIELDS[0]; i++) {
        bson_t *full = BCON_NEW("_id", BCON_OID(&response_id), "creatorId", BCON_UTF8("u"), "creatorType",
                                BCON_UTF8("admin"), "description", BCON_UTF8("d"), "createdAt",
                                BCON_DATE_TIME(UPDATED_MS), "updatedAt", BCON_DATE_TIME(UPDATED_MS));
        json_t *complete = wk_response_json_new(full);
        assert_non_null(complete);
        json_decref(complete);
        bson_t entry;
        copy_without(full, &entry, RESPONSE_FIELDS[i]);
        assert_null(wk_response_json_new(&entry));
        bson_t *with_bad_entry = BCON_NEW("_id", BCON_OID(&id), "response", "[", BCON_DOCUMENT(full),
                                          BCON_DOCUMENT(&entry), "]");
        bson_t whole;
        copy_without(base, &whole, "response");
        bson_iter_t iter;
        assert_true(bson_iter_init_find(&iter, with_bad_entry, "response"));
        assert_true(bson_append_iter(&whole, "response", -1, &iter));
        if (wk_ticket_json_new(&whole) != NULL) fail_msg("reply without %s was shown", RESPONSE_FIELDS[i]);
        bson_destroy(&whole);
        bson_destroy(with_bad_entry);
        bson_destroy(&entry);
        bson_destroy(full);
    }
    bson_destroy(base);
}

static void test_reply_json(void **state) {
    (void)state;
    bson_oid_t response_id = oid("6720b473f1c2b3a5e4d90132");
    bson_t *reply = BCON_NEW("updatedAt", BCON_DATE_TIME(UPDATED_MS), "description",
                             BCON_UTF8("We are looking into it."), "createdAt", BCON_DATE_TIME(UPDATED_MS),
                             "creatorType", BCON_UTF8("admin"), "creatorId", BCON_UTF8("671fb1d8f1c2b3a5e4d90050"),
                             "_id", BCON_OID(&response_id), "extra", BCON_INT32(1));
    json_t *shown = wk_response_json_new(reply);
    assert_non_null(shown);
    char *text = dump(shown);
    assert_string_equal(text, "{\"_id\":\"6720b473f1c2b3a5e4d90132\",\"creatorId\":\"671fb1d8f1c2b3a5e4d90050\","
                              "\"creatorType\":\"admin\",\"description\":\"We are looking into it.\","
                              "\"createdAt\":\"2024-10-28T11:10:00.000Z\",\"updatedAt\":\"2024-10-28T11:10:00.000Z\"}");
    free(text);
    json_decref(shown);
    bson_destroy(reply);
}

static void test_text_with_escapes(void **state) {
    (void)state;
    bson_t *base = seed_ticket_new();
    bson_t ticket;
    copy_without(base, &ticket, "subject");
    BSON_APPEND_UTF8(&ticket, "subject", "quote \" backslash \\ tab \t caf\xc3\xa9");
    json_t *shown = wk_ticket_json_new(&ticket);
    assert_non_null(shown);
    assert_string_equal(json_string_value(json_object_get(shown, "subject")),
                        "quote \" backslash \\ tab \t caf\xc3\xa9");
    json_decref(shown);
    bson_destroy(&ticket);
    bson_destroy(base);
}

/* A shown ticket with a public reply, an internal note, another public reply,
 * and a lifecycle field after __v: what the customer's view keeps. */
static const char NOTED_TICKET_JSON[] =
    "{\"_id\":\"6720b1c8f1c2b3a5e4d90130\",\"status\":\"open\",\"response\":["
    "{\"_id\":\"6720b473f1c2b3a5e4d90132\",\"description\":\"public\"},"
    "{\"_id\":\"6720b473f1c2b3a5e4d90133\",\"description\":\"secret\",\"internal\":true},"
    "{\"_id\":\"6720b473f1c2b3a5e4d90134\",\"description\":\"public too\"}],"
    "\"createdAt\":\"2024-10-28T11:00:00.000Z\",\"__v\":3,\"assigneeId\":\"a1\"}";
static const char NOTED_TICKET_CUSTOMER_JSON[] =
    "{\"_id\":\"6720b1c8f1c2b3a5e4d90130\",\"status\":\"open\",\"response\":["
    "{\"_id\":\"6720b473f1c2b3a5e4d90132\",\"description\":\"public\"},"
    "{\"_id\":\"6720b473f1c2b3a5e4d90134\",\"description\":\"public too\"}],"
    "\"createdAt\":\"2024-10-28T11:00:00.000Z\",\"__v\":3,\"assigneeId\":\"a1\"}";

static json_t *load(const char *text) {
    json_t *value = json_loads(text, 0, NULL);
    assert_non_null(value);
    return value;
}

static void assert_dump(const json_t *value, const char *expected) {
    char *text = dump(value);
    assert_string_equal(text, expected);
    free(text);
}

static void test_hide_internal(void **state) {
    (void)state;
    /* One ticket: a copy without the note, in the same order; the original
     * (which an event may hold) keeps it. */
    json_t *original = load(NOTED_TICKET_JSON);
    json_t *shown = wk_ticket_json_hide_internal(json_incref(original));
    assert_ptr_not_equal(shown, original);
    assert_dump(shown, NOTED_TICKET_CUSTOMER_JSON);
    assert_dump(original, NOTED_TICKET_JSON);
    json_decref(shown);
    /* Nothing to hide: the very same object (the seed stays byte-identical). */
    json_t *seed = load(SEED_TICKET_JSON);
    assert_ptr_equal(wk_ticket_json_hide_internal(seed), seed);
    assert_dump(seed, SEED_TICKET_JSON);
    /* A list: each ticket as above. */
    json_t *list = json_pack("[O, O]", seed, original);
    json_t *shown_list = wk_ticket_json_hide_internal(json_incref(list));
    assert_ptr_not_equal(shown_list, list);
    assert_int_equal(json_array_size(shown_list), 2);
    assert_ptr_equal(json_array_get(shown_list, 0), seed);
    assert_dump(json_array_get(shown_list, 1), NOTED_TICKET_CUSTOMER_JSON);
    assert_dump(json_array_get(list, 1), NOTED_TICKET_JSON);
    /* internal:false is not a note. */
    json_t *not_noted = load("{\"response\":[{\"internal\":false}]}");
    assert_ptr_equal(wk_ticket_json_hide_internal(not_noted), not_noted);
    json_decref(not_noted);
    json_decref(shown_list);
    json_decref(list);
    json_decref(seed);
    json_decref(original);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_ticket),
        cmocka_unit_test(test_lifecycle_fields_follow_version),
        cmocka_unit_test(test_ticket_with_replies),
        cmocka_unit_test(test_version_counter_types),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_missing_field_gives_null),
        cmocka_unit_test(test_mistyped_field_gives_null),
        cmocka_unit_test(test_bad_reply_entry_gives_null),
        cmocka_unit_test(test_reply_json),
        cmocka_unit_test(test_text_with_escapes),
        cmocka_unit_test(test_hide_internal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
