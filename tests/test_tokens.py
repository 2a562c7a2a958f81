def test_documents_get_words_and_character_ngrams(tokenizer):
    tokens = tokenizer.document_tokens("京津城际武清站")
    assert "武清" in tokens  # a jieba word
    assert "#武" in tokens and "#武清" in tokens and "#清站" in tokens  # unigram and bigrams


def test_queries_drop_question_words_but_keep_the_subject(tokenizer):
    tokens = tokenizer.query_tokens("V1汽车世界以什么为核心？")
    assert "什么" not in tokens and "#什么" not in tokens
    assert "核心" in tokens and "v1" in tokens


def test_full_width_and_case_fold_to_the_same_tokens(tokenizer):
    assert tokenizer.document_tokens("Ｖ１汽车") == tokenizer.document_tokens("v1汽车")


def test_query_terms_for_highlighting_are_words_longest_first(tokenizer):
    terms = tokenizer.query_terms("从武清坐城际到北京南站要多久？")
    assert "武清" in terms and "多久" not in terms
    assert all(len(t) >= 2 for t in terms)
    assert [len(t) for t in terms] == sorted((len(t) for t in terms), reverse=True)


def test_empty_or_punctuation_only_text_has_no_query_tokens(tokenizer):
    assert tokenizer.query_tokens("") == []
    assert tokenizer.query_tokens("？？！") == []
    assert tokenizer.query_tokens("什么？") == []
