import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron';
import type { ContractTransport } from '../common/contract-core.js';
import { createClient, unwrapEnvelope } from '../common/contract.js';

// The only bridge between the sandboxed page and the app: the contract's client as window.derm, and
// the one desktop helper the renderer needs (the real path of a dropped file) as window.dermHost.
// Built to CommonJS by esbuild (build/build-preload.mjs) because sandboxed preloads cannot be ESM.
const transport: ContractTransport = {
  invoke: async (call, input) => unwrapEnvelope(call, await ipcRenderer.invoke('derm:invoke', call, input)),
  subscribe: (listener) => {
    const handler = (_event: IpcRendererEvent, payload: unknown) => listener(payload);
    ipcRenderer.on('derm:event', handler);
    return () => {
      ipcRenderer.removeListener('derm:event', handler);
    };
  },
};

contextBridge.exposeInMainWorld('derm', createClient(transport));
contextBridge.exposeInMainWorld('dermHost', {
  kind: 'electron',
  pathForFile: (file: File) => webUtils.getPathForFile(file),
});
