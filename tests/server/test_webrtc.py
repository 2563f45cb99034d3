"""WebRTC clients (WHIP, aiortc) against a real server on 127.0.0.1: swapped video back, control
on the data channel, the same admission and accounting as WebSocket clients, shared batches."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import av
import numpy as np
import pytest
from aiortc import AudioStreamTrack, RTCPeerConnection

from models.hub import ModelHub, ModelSettings
from protocol import (
    Config,
    ConfigConfirmation,
    Error,
    Frame,
    ProcessedFrame,
    Reconnect,
    SourceFace,
    SourceFaceConfirmation,
    Stats,
    StatsRequest,
)
from protocol.webrtc import CONTROL_LABEL
from tests import media
from tests.server.wsclient import receive, send, send_json
from tests.webrtc_peer import TestPeer

TOM = media.insightface_image("Tom_Hanks_54745.png")
SDP = {"Content-Type": "application/sdp"}


@pytest.fixture(scope="module")
def face_boxes() -> list[np.ndarray]:
    faces = ModelHub(ModelSettings()).analyser.analyse([media.group_photo()], [True], False)[0]
    return [face.box for face in faces]


async def offer_sdp(video: bool = True) -> str:
    """A real offer (aiortc's), with or without a video transceiver."""
    pc = RTCPeerConnection()
    if video:
        pc.addTransceiver("video", direction="sendrecv")
    pc.createDataChannel(CONTROL_LABEL)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def books_balance(counts: dict[str, int]) -> bool:
    return counts["frames_received"] == counts["frames_processed"] + counts["frames_superseded"] + counts["frames_failed"]


async def test_swapped_video_comes_back_and_control_travels_on_the_data_channel(start_server, http, face_boxes):
    server = await start_server(frame_processors=("classic",))
    original = media.group_photo()
    peer = TestPeer(original)
    try:
        await peer.connect(http, str(server.make_url("/")))
        # No source face yet: the camera comes back unchanged, but for VP8's loss (once its
        # bitrate has ramped up from the start's).
        before = await peer.frame_after(time.monotonic() + 2.0)
        faces, loss = media.region_changes(original, before, face_boxes)
        assert max(faces) < loss + 3.0, f"nothing is swapped before a source face is set: {faces}, loss {loss}"

        peer.send(SourceFace(image=TOM.read_bytes()))
        confirmation = await peer.receive(SourceFaceConfirmation)
        assert confirmation.status == "success", confirmation
        swapped = await peer.frame_after(time.monotonic() + 2.0)
        faces, background = media.region_changes(before, swapped, face_boxes)
        assert min(faces) > 3 * background, f"every face must change, the background not: {faces}, {background}"

        peer.send(Config(options={"many_faces": False}))
        confirmed = await peer.receive(ConfigConfirmation)
        assert confirmed.options["many_faces"] is False
        one_face = await peer.frame_after(time.monotonic() + 0.5)
        faces, background = media.region_changes(before, one_face, face_boxes)
        assert sum(change > 3 * background for change in faces) == 1, f"one face only without many_faces: {faces}"

        peer.send(StatsRequest())
        stats = (await peer.receive(Stats)).data
        assert stats["transports"]["webrtc"]["connected_clients"] == 1
        assert stats["client"]["frames_processed"] > 0
    finally:
        await peer.close(http)


async def test_frames_belong_on_the_video_track_not_the_channel(start_server, http, frame_jpeg):
    server = await start_server()
    peer = TestPeer(media.group_photo())
    try:
        await peer.connect(http, str(server.make_url("/")))
        peer.send(Frame(jpeg=frame_jpeg, timestamp=1.0, seq=3))
        error = await peer.receive(Error)
        assert error.code == "unexpected_message" and "video track" in error.message
        peer.channel.send("{not json")
        assert (await peer.receive(Error)).code == "bad_json"
        assert peer.pc.connectionState == "connected"  # a bad message is answered, never a disconnect
    finally:
        await peer.close(http)


async def test_signalling_refusals(start_server, http):
    server = await start_server(tokens=("s3cret",), allowed_origins=("https://app.example",))
    url = server.make_url("/whip")
    offer = await offer_sdp()
    auth = {"Authorization": "Bearer s3cret"}
    async with http.post(url, data=offer, headers=SDP) as response:
        assert response.status == 401
    async with http.post(url, data=offer, headers={**SDP, "Authorization": "Bearer wrong"}) as response:
        assert response.status == 401
    async with http.post(url, data=offer, headers={**SDP, **auth, "Origin": "https://evil.example"}) as response:
        assert response.status == 403
    async with http.post(url, data=offer, headers={"Content-Type": "text/plain", **auth}) as response:
        assert response.status == 415
    async with http.post(url, data=await offer_sdp(video=False), headers={**SDP, **auth}) as response:
        assert response.status == 400 and "sendrecv video" in await response.text()
    async with http.post(url, data="v=0\r\nnonsense", headers={**SDP, **auth}) as response:
        assert response.status == 400
    async with http.post(url, data=b"v" * 70_000, headers={**SDP, **auth}) as response:
        assert response.status == 413
    async with http.delete(server.make_url("/whip/no-such-session"), headers=auth) as response:
        assert response.status == 404
    async with http.delete(server.make_url("/whip/no-such-session")) as response:
        assert response.status == 401
    async with http.post(url.with_query(token="s3cret"), data=offer,
                         headers={**SDP, "Origin": "https://app.example"}) as response:
        assert response.status == 201  # a browser: the token in the query, an allowed origin
        assert response.headers["Location"].startswith("/whip/")
        resource = server.make_url(response.headers["Location"])
    async with http.delete(resource, headers={**auth, "Origin": "https://evil.example"}) as response:
        assert response.status == 403
    async with http.delete(resource, headers=auth) as response:
        assert response.status == 204
    stats = await (await http.get(server.make_url("/stats"), headers=auth)).json()
    assert stats["connected_clients"] == 0


async def test_ice_servers_are_announced(start_server, http):
    from server.config import IceServer
    servers = (IceServer("stun:stun.example.org:3478"), IceServer("turn:turn.example.org:3478", "alice", "pw"))
    server = await start_server(ice_servers=servers)
    async with http.options(server.make_url("/whip")) as response:
        assert response.status == 204
        links = response.links.getall("ice-server")
    assert [str(link["url"]) for link in links] == ["stun:stun.example.org:3478", "turn:turn.example.org:3478"]
    assert links[1]["username"] == "alice" and links[1]["credential"] == "pw"


async def test_no_webrtc_turns_signalling_off(start_server, http):
    server = await start_server(webrtc=False)
    async with http.post(server.make_url("/whip"), data=await offer_sdp(), headers=SDP) as response:
        assert response.status in (404, 405)


async def test_delete_frees_the_slot_shared_with_websocket_clients_and_the_books_balance(start_server, http):
    server = await start_server(max_clients=1)
    peer = TestPeer(media.group_photo())
    second = TestPeer(media.group_photo())
    try:
        resource = await peer.connect(http, str(server.make_url("/")))
        await wait_for(lambda: peer.received >= 10)
        async with http.post(server.make_url("/whip"), data=await offer_sdp(), headers=SDP) as response:
            assert response.status == 503 and "server full" in await response.text()
        async with http.ws_connect(server.make_url("/")) as ws:  # one limit for both transports
            closing = await ws.receive(timeout=10)
            assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1013
        async with http.delete(resource) as response:
            assert response.status == 204
        stats = await (await http.get(server.make_url("/stats"))).json()
        assert stats["connected_clients"] == 0  # at once
        webrtc = stats["transports"]["webrtc"]
        assert webrtc["connected_clients"] == 0 and webrtc["frames_received"] >= 10
        for _ in range(100):  # a frame taken before the DELETE is counted failed when its batch returns
            stats = await (await http.get(server.make_url("/stats"))).json()
            if stats["frames_in_flight"] == 0:
                break
            await asyncio.sleep(0.05)
        assert books_balance(stats["transports"]["webrtc"]) and books_balance(stats), stats
        await second.connect(http, str(server.make_url("/")))  # the slot is free again
        await wait_for(lambda: second.received >= 3)
    finally:
        await peer.close()
        await second.close(http)


async def test_webrtc_and_websocket_clients_share_batches(start_server, http):
    server = await start_server(frame_processors=("classic",))
    peer = TestPeer(media.group_photo())
    try:
        await peer.connect(http, str(server.make_url("/")))
        async with http.ws_connect(server.make_url("/")) as ws:
            await send_json(ws, SourceFace(image=TOM.read_bytes()))
            assert (await receive(ws)).status == "success"
            peer.send(SourceFace(image=TOM.read_bytes()))
            assert (await peer.receive(SourceFaceConfirmation)).status == "success"
            jpeg = media.jpeg(media.group_photo())
            answered = 0
            for seq in range(12):  # a frame in flight at a time, beside the peer's stream
                await send(ws, Frame(jpeg=jpeg, timestamp=float(seq), seq=seq), binary=True)
                while not isinstance(await receive(ws), ProcessedFrame):
                    pass
                answered += 1
        stats = await (await http.get(server.make_url("/stats"))).json()
    finally:
        await peer.close(http)
    assert answered == 12
    assert stats["batches_by_transports"].get("webrtc+websocket", 0) > 0, stats["batches_by_transports"]
    assert stats["transports"]["websocket"]["frames_processed"] == 12


class Tone(AudioStreamTrack):
    """A 440 Hz tone in 20 ms frames, paced like a microphone."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()  # paces and stamps 20 ms of silence
        t = (frame.pts + np.arange(frame.samples)) / frame.sample_rate
        frame.planes[0].update((8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16).tobytes())
        self.sent += 1
        return frame


async def test_the_clients_audio_comes_back_and_drain_asks_to_reconnect(start_server, http):
    server = await start_server()
    tone = Tone()
    peer = TestPeer(media.group_photo(), audio=tone)
    try:
        await peer.connect(http, str(server.make_url("/")))
        await wait_for(lambda: len(peer.audio_frames) >= 25 and peer.received >= 10)
        samples = np.concatenate([frame.to_ndarray().ravel() for _, frame in peer.audio_frames[-10:]])
        assert np.abs(samples).max() > 2000, "the tone comes back, not silence"
        async with http.post(server.make_url("/admin/drain")) as response:
            assert response.status == 202
        reconnect = await peer.receive(Reconnect)
        assert reconnect.reason == "server draining"
    finally:
        await peer.close(http)


async def test_h264_where_the_client_prefers_it(start_server, http):
    from aiortc import RTCRtpSender

    server = await start_server()
    peer = TestPeer(media.group_photo())
    h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
    [transceiver] = [t for t in peer.pc.getTransceivers() if t.kind == "video"]
    transceiver.setCodecPreferences(h264)
    try:
        await peer.connect(http, str(server.make_url("/")))
        await wait_for(lambda: peer.received >= 10)
        answer = peer.pc.remoteDescription.sdp
        video = answer[answer.index("m=video"):]
        assert "H264/90000" in video and "VP8/90000" not in video, "the answer keeps the client's H.264"
        returned = peer.frames[-1][1]
        assert np.abs(returned.astype(np.int16) - media.group_photo()).mean() < 12  # the picture, through H.264
    finally:
        await peer.close(http)
