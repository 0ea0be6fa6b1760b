import type { Component } from 'svelte';
import ImportScreen from './import/ImportScreen.svelte';
import LabellingScreen from './labelling/LabellingScreen.svelte';
import ExportScreen from './export/ExportScreen.svelte';
import SimilarScreen from './similar/SimilarScreen.svelte';
import ProbesScreen from './probes/ProbesScreen.svelte';
import MapScreen from './map/MapScreen.svelte';
import LibraryScreen from './library/LibraryScreen.svelte';
import QualityScreen from './quality/QualityScreen.svelte';
import SettingsScreen from './settings/SettingsScreen.svelte';
import AgreementScreen from './agreement/AgreementScreen.svelte';

export interface ScreenDefinition {
  id: string;
  title: string;
  /** Digit that opens the screen from anywhere outside a text field. */
  key: string;
  component: Component;
  /** Shortcuts shown in the `?` overlay while this screen is open. */
  shortcuts?: Array<[string, string]>;
}

/**
 * The screens of the app, in navigation order. Each feature folder is independent: a new screen is a
 * folder under features/ and one entry here.
 */
export const screens: ScreenDefinition[] = [
  {
    id: 'library',
    title: 'Library',
    key: '1',
    component: LibraryScreen,
    shortcuts: [
      ['/', 'Search file names'],
      ['← ↑ → ↓', 'Move through the grid'],
      ['Shift + arrows', 'Extend the selection'],
      ['Space', 'Select or deselect'],
      ['Enter', 'Open the image'],
      ['+ / − / 0', 'Zoom in, out, fit (image open)'],
      ['Esc', 'Close the image'],
    ],
  },
  { id: 'import', title: 'Import', key: '2', component: ImportScreen },
  { id: 'similar', title: 'Similar cases', key: '3', component: SimilarScreen, shortcuts: [['+ / − / 0', 'Zoom both images (comparing)']] },
  {
    id: 'labelling',
    title: 'Labelling',
    key: '4',
    component: LabellingScreen,
    shortcuts: [
      ['Enter', 'Save labels and show the next image (refused with nothing chosen)'],
      ['→', 'Skip this image'],
      ['←', 'Previous image'],
      ['Tab / Shift+Tab', 'Next / previous label kind (each image starts on Condition)'],
      ['letter', 'Choose the value with that hotkey'],
      ['1–5', 'Confidence of the last condition chosen'],
      ['1–6 / 1–0', 'Fitzpatrick type / Monk tone (in those kinds)'],
      ['/', 'Search the values of the kind; Enter chooses'],
      ['+ / = / −', 'Zoom in / out (buttons: Fit, 1:1)'],
      ['.', 'Write a note'],
      ['Ctrl+Z / Ctrl+Shift+Z', 'Undo / redo the last saved change'],
      ['Esc', 'Back to the sessions'],
    ],
  },
  { id: 'quality', title: 'Quality', key: '5', component: QualityScreen, shortcuts: [['← →', 'Move a focused threshold (Shift: faster)']] },
  { id: 'map', title: 'Map', key: '6', component: MapScreen },
  { id: 'probes', title: 'Probes', key: '7', component: ProbesScreen },
  { id: 'export', title: 'Export', key: '8', component: ExportScreen },
  { id: 'settings', title: 'Models & settings', key: '9', component: SettingsScreen },
  { id: 'agreement', title: 'Agreement', key: '0', component: AgreementScreen },
];
