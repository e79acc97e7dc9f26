<?php
// This file is part of CAIPI's Moodle block (block_caipi).
//
// This program is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// This program is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with this program.  If not, see <http://www.gnu.org/licenses/>.

/**
 * Finding the CAIPI activities of a course.
 *
 * @package    block_caipi
 * @copyright  2026 CAIPI
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace block_caipi\local;

/**
 * CAIPI's registered tool types and the course's activities that use them.
 */
class activities {
    /**
     * Ids of the External tool types that are CAIPI: their tool URL starts with the
     * block's "CAIPI address" setting, or (unset) their name starts with "CAIPI".
     *
     * @return int[]
     */
    public static function tool_type_ids(): array {
        global $DB;
        $url = trim((string)get_config('block_caipi', 'caipiurl'));
        if ($url !== '') {
            $where = $DB->sql_like('baseurl', ':prefix', false);
            $params = ['prefix' => $DB->sql_like_escape(rtrim($url, '/')) . '%'];
        } else {
            $where = $DB->sql_like('name', ':prefix', false);
            $params = ['prefix' => 'CAIPI%'];
        }
        return array_map('intval', $DB->get_fieldset_select('lti_types', 'id', $where, $params));
    }

    /**
     * The course's CAIPI activities the current user can see, by course order.
     *
     * @param \stdClass $course The course.
     * @return \cm_info[]
     */
    public static function visible(\stdClass $course): array {
        global $DB;
        $types = self::tool_type_ids();
        $found = [];
        foreach (get_fast_modinfo($course)->get_instances_of('lti') as $cm) {
            if (!$cm->uservisible) {
                continue;
            }
            $typeid = (int)$DB->get_field('lti', 'typeid', ['id' => $cm->instance]);
            if (in_array($typeid, $types, true)) {
                $found[$cm->id] = $cm;
            }
        }
        return $found;
    }

    /**
     * The activity the block shows: the chosen one if the user can see it, else the first.
     *
     * @param \stdClass $course The course.
     * @param int $cmid The lecturer's choice (0: the first).
     * @return \cm_info|null
     */
    public static function choose(\stdClass $course, int $cmid): ?\cm_info {
        $visible = self::visible($course);
        if ($cmid && isset($visible[$cmid])) {
            return $visible[$cmid];
        }
        return $visible ? reset($visible) : null;
    }

    /**
     * Choices for the block's settings: activity id => name.
     *
     * @param \stdClass $course The course.
     * @return string[]
     */
    public static function options(\stdClass $course): array {
        $options = [];
        foreach (self::visible($course) as $cm) {
            $options[$cm->id] = $cm->get_formatted_name();
        }
        return $options;
    }
}
