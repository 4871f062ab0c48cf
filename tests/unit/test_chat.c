/* Chat templates: expected prompts written out from the Jinja templates the model families
 * ship (ChatML as in Qwen/OpenHermes tokenizer_config.json, Llama-2's default template). */
#include <stdlib.h>

#include "models/transformer/chat.h"
#include "check.h"

static const mdl_chat_message_t convo[] = {
    {"system", "Be brief."},
    {"user", "  Who begat Enos? "},
    {"assistant", "Seth.\n"},
    {"user", "And Enos?"},
};

static void expect_render(mdl_chat_template_t t, const mdl_chat_message_t *m, size_t n, const char *want)
{
    mdl_err_t err = {0};
    char *got = mdl_chat_render(t, m, n, "<s>", "</s>", &err);
    CHECK_EQ_STR(got, want);
    if (!got)
        fprintf(stderr, "  error: %s\n", err.msg);
    free(got);
}

static void expect_refused(mdl_chat_template_t t, const mdl_chat_message_t *m, size_t n, const char *what)
{
    mdl_err_t err = {0};
    char *got = mdl_chat_render(t, m, n, "<s>", "</s>", &err);
    CHECK(got == NULL);
    CHECK_EQ_INT(err.code, -EPROTO);
    CHECK(strstr(err.msg, what) != NULL);
    free(got);
}

static void test_chatml(void)
{
    expect_render(MDL_CHAT_TEMPLATE_CHATML, convo, 4,
                  "<|im_start|>system\nBe brief.<|im_end|>\n"
                  "<|im_start|>user\n  Who begat Enos? <|im_end|>\n"
                  "<|im_start|>assistant\nSeth.\n<|im_end|>\n"
                  "<|im_start|>user\nAnd Enos?<|im_end|>\n"
                  "<|im_start|>assistant\n");
    CHECK_EQ_STR(mdl_chat_stop_text(MDL_CHAT_TEMPLATE_CHATML), "<|im_end|>");
}

static void test_llama2(void)
{
    expect_render(MDL_CHAT_TEMPLATE_LLAMA2, convo, 4,
                  "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWho begat Enos? [/INST] Seth. </s>"
                  "<s>[INST] And Enos? [/INST]");
    expect_render(MDL_CHAT_TEMPLATE_LLAMA2, convo + 3, 1, "<s>[INST] And Enos? [/INST]");
    CHECK(mdl_chat_stop_text(MDL_CHAT_TEMPLATE_LLAMA2) == NULL);
}

static void test_llama2_needs_alternating_roles(void)
{
    const mdl_chat_message_t two_users[] = {{"user", "a"}, {"user", "b"}};
    const mdl_chat_message_t ends_assistant[] = {{"user", "a"}, {"assistant", "b"}};
    const mdl_chat_message_t only_system[] = {{"system", "a"}};
    expect_refused(MDL_CHAT_TEMPLATE_LLAMA2, two_users, 2, "messages[1]");
    expect_refused(MDL_CHAT_TEMPLATE_LLAMA2, ends_assistant, 2, "messages[1]: the last message");
    expect_refused(MDL_CHAT_TEMPLATE_LLAMA2, only_system, 1, "needs a user message");
}

static void test_plain(void)
{
    expect_render(MDL_CHAT_TEMPLATE_PLAIN, convo + 3, 1, "user: And Enos?\nassistant:");
}

static void test_bad_roles_and_empty(void)
{
    const mdl_chat_message_t tool[] = {{"user", "a"}, {"tool", "b"}};
    expect_refused(MDL_CHAT_TEMPLATE_CHATML, tool, 2, "messages[1].role");
    expect_refused(MDL_CHAT_TEMPLATE_PLAIN, tool, 0, "at least one message");
}

static void test_template_names(void)
{
    mdl_chat_template_t t;
    mdl_err_t err = {0};
    CHECK_EQ_INT(mdl_chat_template_parse("llama2", &t, &err), 0);
    CHECK_EQ_INT(t, MDL_CHAT_TEMPLATE_LLAMA2);
    CHECK_EQ_STR(mdl_chat_template_name(MDL_CHAT_TEMPLATE_CHATML), "chatml");
    CHECK_EQ_INT(mdl_chat_template_parse("jinja", &t, &err), -EINVAL);
    CHECK(strstr(err.msg, "jinja") != NULL);
}

int main(void)
{
    RUN(test_chatml);
    RUN(test_llama2);
    RUN(test_llama2_needs_alternating_roles);
    RUN(test_plain);
    RUN(test_bad_roles_and_empty);
    RUN(test_template_names);
    return check_summary();
}
