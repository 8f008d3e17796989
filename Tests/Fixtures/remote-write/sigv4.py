"""Signs one request with botocore's SigV4Auth (an implementation independent of the
gateway's) and prints the Authorization header. Arguments: a JSON object on stdin
{method, url, headers: [[name, value]], body_hex, access_key, secret_key, token,
region, service, amz_date}."""
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

r = json.load(sys.stdin)
request = AWSRequest(method=r["method"], url=r["url"], data=bytes.fromhex(r["body_hex"]), headers=dict(r["headers"]))
auth = SigV4Auth(Credentials(r["access_key"], r["secret_key"], r.get("token")), r["service"], r["region"])
request.context["timestamp"] = r["amz_date"]
request.headers["X-Amz-Date"] = r["amz_date"]
if r.get("token"):
    request.headers["X-Amz-Security-Token"] = r["token"]
canonical = auth.canonical_request(request)
string_to_sign = auth.string_to_sign(request, canonical)
signature = auth.signature(string_to_sign, request)
print("AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=%s, Signature=%s" % (
    auth.scope(request), auth.signed_headers(auth.headers_to_sign(request)), signature))
