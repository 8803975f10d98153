/**
 * React hooks over the voice and XR clients (`@enis/client/react`; React is a peer dependency).
 * Each hook owns one socket for the component's lifetime and exposes its state and last frames.
 */

import { useEffect, useRef, useState } from "react";

import type { VoiceCodec, VoiceDownlinkFrame, XRDownlinkFrame, XRUplinkType } from "./frames.js";
import { type RealtimeOptions, type RealtimeState, VoiceClient, XRClient } from "./realtime.js";

export interface VoiceHook {
  state: RealtimeState;
  /** The latest `partial` transcript frame, replaced by each new one. */
  partial: VoiceDownlinkFrame | null;
  /** Every `final` frame so far. */
  finals: VoiceDownlinkFrame[];
  /** The latest `error` frame. */
  error: VoiceDownlinkFrame | null;
  sendAudio: (payload: unknown, codec?: VoiceCodec) => boolean;
  close: () => void;
}

export function useVoice(options: RealtimeOptions): VoiceHook {
  const client = useRef<VoiceClient | null>(null);
  const [state, setState] = useState<RealtimeState>("idle");
  const [partial, setPartial] = useState<VoiceDownlinkFrame | null>(null);
  const [finals, setFinals] = useState<VoiceDownlinkFrame[]>([]);
  const [error, setError] = useState<VoiceDownlinkFrame | null>(null);
  useEffect(() => {
    const voice = new VoiceClient(options);
    client.current = voice;
    const stopState = voice.onState(setState);
    const stopFrames = voice.onFrame((frame) => {
      if (frame.type === "partial") setPartial(frame);
      else if (frame.type === "final") setFinals((previous) => [...previous, frame]);
      else if (frame.type === "error") setError(frame);
    });
    voice.connect().catch(() => undefined); // a refusal shows as state "closed" (and voice.error)
    return () => {
      stopState();
      stopFrames();
      voice.close();
    };
  }, [options.baseUrl]);
  return {
    state,
    partial,
    finals,
    error,
    sendAudio: (payload, codec) => client.current?.sendAudio(payload, codec) ?? false,
    close: () => client.current?.close(),
  };
}

export interface XRHook {
  state: RealtimeState;
  /** The latest frame from the server. */
  last: XRDownlinkFrame | null;
  send: (type: XRUplinkType, data: Record<string, unknown>) => boolean;
  close: () => void;
}

export function useXR(options: RealtimeOptions): XRHook {
  const client = useRef<XRClient | null>(null);
  const [state, setState] = useState<RealtimeState>("idle");
  const [last, setLast] = useState<XRDownlinkFrame | null>(null);
  useEffect(() => {
    const xr = new XRClient(options);
    client.current = xr;
    const stopState = xr.onState(setState);
    const stopFrames = xr.onFrame(setLast);
    xr.connect().catch(() => undefined); // a refusal shows as state "closed" (and xr.error)
    return () => {
      stopState();
      stopFrames();
      xr.close();
    };
  }, [options.baseUrl]);
  return {
    state,
    last,
    send: (type, data) => client.current?.sendObservation(type, data) ?? false,
    close: () => client.current?.close(),
  };
}
