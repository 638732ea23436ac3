"""Reviews and votes, referrals that convert on the first purchase, social profiles."""

from tests.api.operations import PURCHASE, REGISTER, purchase_input

REVIEW = 'mutation($i: ReviewSubmitInput!) { reviewSubmit(input: $i) { review { id helpfulVotes unhelpfulVotes } errors { code field } } }'
VOTE = 'mutation($i: ReviewVoteInput!) { reviewVote(input: $i) { review { helpfulVotes unhelpfulVotes } errors { code } } }'
CREATE = 'mutation($i: ReferralCreateInput!) { referralCreate(input: $i) { referral { id code status } errors { code field } } }'
ACCEPT = 'mutation($i: ReferralAcceptInput!) { referralAccept(input: $i) { referral { status referee { id } } errors { code field } } }'
SOCIAL = 'mutation($i: SocialProfileLinkInput!) { socialProfileLink(input: $i) { socialProfile { platform handle followers } errors { code field } } }'


async def _customer(gql, phone):
    data = await gql.data(REGISTER, {"input": {"channel": "MOBILE_APP", "phone": phone}}, as_="app")
    return data["customerRegister"]["customer"]["id"]


async def test_reviews_and_helpful_votes(gql):
    author, reader, other = [await _customer(gql, f"+7916777000{n}") for n in range(3)]
    review = (await gql.data(REVIEW, {"i": {"customerId": author, "productSku": "RUN-1", "rating": 5, "text": "Лёгкие и удобные"}}, as_="app"))["reviewSubmit"]["review"]
    # an app never gets decrypted text; staff (audited) and the author do
    texts = await gql.data('query($id: ID!) { customer(id: $id) { reviews { text } } }', {"id": author})
    assert texts["customer"]["reviews"] == [{"text": "Лёгкие и удобные"}]
    await gql.data(VOTE, {"i": {"reviewId": review["id"], "voterId": reader, "helpful": True}}, as_="app")
    await gql.data(VOTE, {"i": {"reviewId": review["id"], "voterId": other, "helpful": False}}, as_="app")
    changed = await gql.data(VOTE, {"i": {"reviewId": review["id"], "voterId": other, "helpful": True}}, as_="app")
    assert changed["reviewVote"]["review"] == {"helpfulVotes": 2, "unhelpfulVotes": 0}
    own = await gql.data(
        VOTE, {"i": {"reviewId": review["id"], "voterId": author, "helpful": True}}, as_="app"
    )
    assert own["reviewVote"]["errors"][0]["code"] == "OWN_REVIEW_VOTE"
    twice = await gql.data(
        REVIEW, {"i": {"customerId": author, "productSku": "RUN-1", "rating": 1}}, as_="app"
    )
    assert twice["reviewSubmit"]["errors"][0]["code"] == "DUPLICATE_REVIEW"
    bad = await gql.data(
        REVIEW, {"i": {"customerId": author, "productSku": "RUN-2", "rating": 6}}, as_="app"
    )
    assert bad["reviewSubmit"]["errors"][0]["field"] == ["input", "rating"]


async def test_referral_chain_converts_on_first_purchase(gql):
    grandma, mother, child = [await _customer(gql, f"+7916777100{n}") for n in range(3)]
    for referrer, referee in ((grandma, mother), (mother, child)):
        code = (await gql.data(CREATE, {"i": {"referrerId": referrer}}, as_="app"))[
            "referralCreate"
        ]["referral"]["code"]
        accepted = await gql.data(ACCEPT, {"i": {"code": code, "customerId": referee}}, as_="app")
        assert accepted["referralAccept"]["referral"]["status"] == "REGISTERED"
    reused = await gql.data(ACCEPT, {"i": {"code": code, "customerId": grandma}}, as_="app")
    assert reused["referralAccept"]["errors"][0]["code"] == "REFERRAL_ALREADY_USED"
    await gql.data(PURCHASE, {"input": purchase_input(child, "child-first-1")}, as_="app")
    graph = await gql.data(
        "query($id: ID!) { customer(id: $id) { referredBy { status convertedAt referrer { id referredBy { status referrer { id } } } } } }",
        {"id": child},
    )
    referred = graph["customer"]["referredBy"]
    assert referred["status"] == "CONVERTED" and referred["convertedAt"]
    assert referred["referrer"]["id"] == mother
    assert referred["referrer"]["referredBy"] == {
        "status": "REGISTERED",
        "referrer": {"id": grandma},
    }
    made = await gql.data(
        "query($id: ID!) { customer(id: $id) { referralsMade { status referee { id } } } }",
        {"id": mother},
    )
    assert made["customer"]["referralsMade"] == [{"status": "CONVERTED", "referee": {"id": child}}]


async def test_self_referral_and_taken_codes(gql):
    one = await _customer(gql, "+79167772000")
    made = await gql.data(CREATE, {"i": {"referrerId": one, "code": "RUNCLUB"}}, as_="app")
    assert made["referralCreate"]["referral"]["code"] == "RUNCLUB"
    taken = await gql.data(CREATE, {"i": {"referrerId": one, "code": "runclub"}}, as_="app")
    assert taken["referralCreate"]["errors"][0]["code"] == "REFERRAL_CODE_TAKEN"
    selfish = await gql.data(ACCEPT, {"i": {"code": "RUNCLUB", "customerId": one}}, as_="app")
    assert selfish["referralAccept"]["errors"][0]["code"] == "SELF_REFERRAL"


async def test_social_profiles(gql):
    one, two = await _customer(gql, "+79167773000"), await _customer(gql, "+79167773001")
    linked = await gql.data(
        SOCIAL,
        {"i": {"customerId": one, "platform": "VK", "handle": "@Runner", "followers": 15000}},
        as_="operator",
    )
    assert linked["socialProfileLink"]["socialProfile"] == {
        "platform": "VK",
        "handle": "runner",
        "followers": 15000,
    }
    again = await gql.data(
        SOCIAL,
        {"i": {"customerId": one, "platform": "VK", "handle": "runner", "followers": 16000}},
        as_="operator",
    )
    assert again["socialProfileLink"]["socialProfile"]["followers"] == 16000
    stolen = await gql.data(
        SOCIAL, {"i": {"customerId": two, "platform": "VK", "handle": "RUNNER"}}, as_="operator"
    )
    assert stolen["socialProfileLink"]["errors"][0]["code"] == "SOCIAL_PROFILE_TAKEN"
    negative = await gql.data(
        SOCIAL,
        {"i": {"customerId": two, "platform": "VK", "handle": "x", "followers": -1}},
        as_="operator",
    )
    assert negative["socialProfileLink"]["errors"][0]["field"] == ["input", "followers"]
